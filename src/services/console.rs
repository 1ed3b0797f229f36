//! The read-only SQL console: one statement over the log and the read tables, on a read-only connection of its
//! own, with an authorizer that allows reads of those tables only, a time limit and a row cap.

use std::time::{Duration, Instant};

use cairn_events::schema;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

use super::ServiceError;
use crate::Cairn;

/// The tables the browser and the console may read: the log and every read table.
pub static TABLES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    std::iter::once("events")
        .chain(cairn_projections::READ_TABLES.iter().copied())
        .collect()
});

/// Columns never shown: a token's hash is as good as a hint.
pub const HIDDEN: &[&str] = &["token_hash"];

/// The console's limits: rows, time, the largest value one expression may make (SQLite's own
/// `SQLITE_LIMIT_LENGTH`, so that `randomblob(400000000)` fails before it allocates), and the bytes of an answer.
pub const QUERY_ROWS: usize = 1000;
pub const QUERY_TIME: Duration = Duration::from_secs(3);
pub const QUERY_VALUE_BYTES: i32 = 1 << 20;
pub const QUERY_BYTES: usize = 8 << 20;

/// What a statement read.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct QueryResult {
    pub columns: Vec<String>,
    /// Each row's cells, in the order of `columns`.
    pub rows: Vec<Vec<Value>>,
    /// True when the statement had more rows than [`QUERY_ROWS`], or more bytes than [`QUERY_BYTES`].
    pub truncated: bool,
    pub row_cap: usize,
    pub elapsed_ms: u64,
}

/// A cell as JSON; a blob shows as its size.
pub fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(r) => Value::from(r),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::from(format!("<{} bytes>", b.len())),
    }
}

/// Runs one statement of the console against `cairn`'s database.
pub async fn query(cairn: &Cairn, sql: String) -> Result<QueryResult, ServiceError> {
    if sql.trim().is_empty() {
        return Err(ServiceError::invalid("VALIDATION_ERROR", "sql must not be empty"));
    }
    let db = crate::datadir::db_path(cairn.root());
    super::blocking(move || {
        // Its own read-only connection, so the authorizer never touches a pooled one.
        let conn = schema::open_read_only(&db)?;
        shadow_events(&conn)?;
        run_query(&conn, &sql)
    })
    .await
}

/// Puts a temporary view named `events` in front of the log on the console's own connection, which shows
/// every column but leaves the secret fields out of `data` ([`cairn_events::SECRET_FIELDS`]); an unqualified
/// `events` names the view, and [`authorize`] lets `main.events.data` be read through it only.
fn shadow_events(conn: &Connection) -> Result<(), ServiceError> {
    let data = readable_data();
    conn.execute_batch(&format!(
        "CREATE TEMP VIEW events AS SELECT position, id, stream, version, type, schema, {data} AS data, metadata,
                recorded_at, crc, hash FROM main.events"
    ))?;
    Ok(())
}

/// The SQL that reads the log's `data` without its secret fields.
pub fn readable_data() -> String {
    cairn_events::SECRET_FIELDS
        .iter()
        .fold("data".to_owned(), |d, f| format!("json_remove({d}, '$.{f}')"))
}

/// Lets the console read the allowed tables of `main` (the log's `data` only through the view of
/// [`shadow_events`]) and call functions, and nothing else. A read with no database is of a common table
/// expression, not of a stored table.
fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Select | AuthAction::Function { .. } | AuthAction::Recursive => Authorization::Allow,
        AuthAction::Read {
            table_name,
            column_name,
        } => match ctx.database_name {
            None => Authorization::Allow,
            Some("temp") if table_name == "events" => Authorization::Allow,
            Some("main") if table_name == "events" && column_name == "data" && ctx.accessor != Some("events") => {
                Authorization::Ignore // reads as NULL: read it through the view
            }
            Some("main")
                if TABLES.contains(&table_name) || table_name == "sqlite_schema" || table_name == "sqlite_master" =>
            {
                if HIDDEN.contains(&column_name) {
                    Authorization::Ignore // reads as NULL
                } else {
                    Authorization::Allow
                }
            }
            _ => Authorization::Deny,
        },
        _ => Authorization::Deny,
    }
}

fn refused(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::invalid("QUERY_REFUSED", e.to_string())
}

/// Whether any of the statements in `sql` begins as one that changes something (or the connection).
fn writes(sql: &str) -> bool {
    sql.split(';').any(begins_a_write)
}

fn begins_a_write(sql: &str) -> bool {
    const WRITES: [&str; 16] = [
        "insert",
        "update",
        "delete",
        "replace",
        "create",
        "drop",
        "alter",
        "attach",
        "detach",
        "pragma",
        "vacuum",
        "reindex",
        "analyze",
        "begin",
        "commit",
        "savepoint",
    ];
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    WRITES.iter().any(|w| first.eq_ignore_ascii_case(w))
}

/// Why SQLite would not prepare or run a statement, by kind: something the console does not allow is
/// `QUERY_REFUSED`; SQL that is wrong (syntax, an unknown column, a bad argument) is `INVALID_SQL`; a value past
/// the console's byte limit is `QUERY_TOO_LARGE`.
fn sql_error(e: rusqlite::Error) -> ServiceError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => refused(format!("not allowed here: {e}")),
        Some(rusqlite::ErrorCode::TooBig) => ServiceError::invalid(
            "QUERY_TOO_LARGE",
            format!("a value is over the console's limit of {} MiB", QUERY_VALUE_BYTES >> 20),
        ),
        _ if matches!(e, rusqlite::Error::MultipleStatement) => refused("one statement at a time"),
        // What SQLite itself forbids on this connection (load_extension) says so in words, not by code.
        _ if e.to_string().contains("not authorized") => refused(format!("not allowed here: {e}")),
        _ => ServiceError::invalid("INVALID_SQL", e.to_string()),
    }
}

/// Runs one statement on a read-only connection with [`authorize`], a time limit and a row cap.
pub fn run_query(conn: &Connection, sql: &str) -> Result<QueryResult, ServiceError> {
    let started = Instant::now();
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, QUERY_VALUE_BYTES)?;
    conn.authorizer(Some(authorize))?;
    conn.progress_handler(10_000, Some(move || started.elapsed() > QUERY_TIME))?;
    let result = (|| -> Result<QueryResult, ServiceError> {
        let mut stmt = conn.prepare(sql).map_err(|e| match writes(sql) {
            // A write SQLite could not even prepare (to the `events` view, say) is still a write.
            true => refused("only statements that read are allowed"),
            false => sql_error(e),
        })?;
        if !stmt.readonly() {
            return Err(refused("only statements that read are allowed"));
        }
        let columns: Vec<String> = stmt.column_names().iter().map(|c| (*c).to_owned()).collect();
        let mut rows = stmt.query([]).map_err(sql_error)?;
        let mut out = Vec::new();
        let mut truncated = false;
        let mut bytes = 0usize;
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    if out.len() == QUERY_ROWS || bytes > QUERY_BYTES {
                        truncated = true;
                        break;
                    }
                    let cells: Vec<Value> = (0..columns.len())
                        .map(|i| row.get_ref(i).map(value))
                        .collect::<rusqlite::Result<_>>()?;
                    bytes += cells.iter().map(|c| c.to_string().len()).sum::<usize>();
                    out.push(cells);
                }
                Ok(None) => break,
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) => {
                    return Err(ServiceError::invalid(
                        "QUERY_TIMEOUT",
                        format!("the query ran longer than {} s", QUERY_TIME.as_secs()),
                    ));
                }
                Err(e) => return Err(sql_error(e)),
            }
        }
        Ok(QueryResult {
            columns,
            rows: out,
            truncated,
            row_cap: QUERY_ROWS,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    })();
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)?;
    conn.progress_handler(0, None::<fn() -> bool>)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        drop(schema::open_writable(&path, Default::default()).unwrap());
        let conn = schema::open_read_only(&path).unwrap();
        shadow_events(&conn).unwrap();
        (dir, conn)
    }

    fn code(e: &ServiceError) -> &'static str {
        match e {
            ServiceError::Invalid { code, .. } => code,
            _ => "<not invalid>",
        }
    }

    #[test]
    fn the_console_reads_the_allowed_tables_and_refuses_everything_else() {
        let (_dir, conn) = db();
        let ok = run_query(&conn, "SELECT count(*) AS n FROM events").unwrap();
        assert_eq!(ok.rows[0][0], 0);
        assert!(run_query(&conn, "SELECT token_hash FROM clients")
            .unwrap()
            .rows
            .is_empty());
        for sql in [
            "DELETE FROM events",
            "UPDATE clients SET name = 'x'",
            "INSERT INTO logs (id, level, message, source, recorded_at) VALUES (1, 'info', 'm', 's', 't')",
            "DROP TABLE events",
            "CREATE TABLE x (y)",
            "ATTACH DATABASE '/tmp/evil.db' AS evil",
            "PRAGMA writable_schema = 1",
            "SELECT * FROM pragma_table_info('events')",
            "SELECT 1; DELETE FROM events",
        ] {
            let err = run_query(&conn, sql).unwrap_err();
            assert_eq!(code(&err), "QUERY_REFUSED", "{sql}: {err:?}");
        }
        for sql in [
            "not sql at all",
            "SELECT nope FROM clients",
            "SELECT * FROM clients WHERE",
        ] {
            let err = run_query(&conn, sql).unwrap_err();
            assert_eq!(code(&err), "INVALID_SQL", "{sql}: {err:?}");
        }
        let slow = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r";
        let timed_out = run_query(&conn, slow).unwrap_err();
        assert_eq!(code(&timed_out), "QUERY_TIMEOUT", "{timed_out:?}");
        let many = run_query(
            &conn,
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 5000) SELECT i FROM r",
        )
        .unwrap();
        assert_eq!((many.rows.len(), many.truncated), (QUERY_ROWS, true));
    }

    #[test]
    fn the_console_is_bounded_in_bytes_as_well_as_rows_and_time() {
        let (_dir, conn) = db();
        let started = Instant::now();
        let huge = run_query(&conn, "SELECT hex(randomblob(400000000))").unwrap_err();
        assert_eq!(code(&huge), "QUERY_TOO_LARGE", "{huge:?}");
        assert!(started.elapsed() < QUERY_TIME, "refused before it allocated");
        let wide = run_query(
            &conn,
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 100) \
             SELECT hex(randomblob(500000)) FROM r",
        )
        .unwrap();
        assert!(wide.truncated && wide.rows.len() < 20, "{} rows", wide.rows.len());
    }
}
