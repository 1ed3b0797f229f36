//! Comparing the read tables of two databases row by row: how `replay --verify` and the tests prove that a
//! rebuild equals the live state.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::Connection;
use serde::Serialize;

use crate::rebuilt_tables;

/// One row that differs between the two sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub table: String,
    /// The row's primary key.
    pub key: String,
    /// What differs: a missing row, or each column with both values.
    pub detail: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.table, self.key, self.detail)
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Text(t) => format!("{t:?}"),
        Value::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

fn rows_only_in(
    conn: &Connection,
    table: &str,
    left: &str,
    right: &str,
) -> rusqlite::Result<BTreeMap<String, Vec<Value>>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT * FROM {left}.{table} EXCEPT SELECT * FROM {right}.{table}"
    ))?;
    let n = stmt.column_count();
    let rows = stmt.query_map([], |r| {
        (0..n)
            .map(|i| r.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let row = row?;
        out.insert(show(&row[0]), row);
    }
    Ok(out)
}

/// Compares every read table (and the Merkle tree's nodes) of schema `left` with schema `right` on one connection (attach the other
/// database first). Returns at most `limit` differences.
pub fn compare(conn: &Connection, left: &str, right: &str, limit: usize) -> rusqlite::Result<Vec<Difference>> {
    let mut out = Vec::new();
    for table in rebuilt_tables() {
        let columns: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM {left}.pragma_table_info('{table}') ORDER BY cid"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let only_left = rows_only_in(conn, table, left, right)?;
        let mut only_right = rows_only_in(conn, table, right, left)?;
        for (key, l) in only_left {
            let detail = match only_right.remove(&key) {
                Some(r) => columns
                    .iter()
                    .zip(l.iter().zip(r.iter()))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(c, (a, b))| format!("{c}: {left} {} vs {right} {}", show(a), show(b)))
                    .collect::<Vec<_>>()
                    .join("; "),
                None => format!("only in {left}"),
            };
            out.push(Difference {
                table: table.to_owned(),
                key,
                detail,
            });
        }
        for key in only_right.into_keys() {
            out.push(Difference {
                table: table.to_owned(),
                key,
                detail: format!("only in {right}"),
            });
        }
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    Ok(out)
}
