//! `/api/db…`: the database itself: info, health, a table browser, row edits that become events, a read-only
//! SQL console, online backup and optimize.

use std::time::{Duration, Instant};

use cairn_events::catalogue::{DatabaseBackedUp, DatabaseOptimized};
use cairn_events::{reader, schema, DomainEvent, ExpectedVersion, NewEvent, StoreError};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use super::read;
use crate::commands::client::{DeleteClient, UpdateClient};
use crate::commands::file::DeleteFile;
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::http::AppState;

/// The tables the browser and the console may read: the log and every read table.
pub static TABLES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    std::iter::once("events")
        .chain(cairn_projections::READ_TABLES.iter().copied())
        .collect()
});

/// Columns never shown: a token's hash is as good as a hint.
const HIDDEN: &[&str] = &["token_hash"];

/// The SQL console's limits.
pub const QUERY_ROWS: usize = 1000;
pub const QUERY_TIME: Duration = Duration::from_secs(3);

fn table_name(req: &Request) -> Result<&'static str, ApiError> {
    let raw = req.params.first().map(String::as_str).unwrap_or_default();
    TABLES.iter().find(|t| **t == raw).copied().ok_or_else(|| {
        ApiError::not_found(
            "TABLE_NOT_FOUND",
            format!("no table {raw:?}; tables: {}", TABLES.join(", ")),
        )
    })
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(r) => Value::from(r),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::from(format!("<{} bytes>", b.len())),
    }
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub async fn info(state: &AppState) -> Result<Response, ApiError> {
    let db = crate::datadir::db_path(state.cairn.root());
    let body = read(state, move |conn| {
        let pragma =
            |p: &str| -> Result<i64, ApiError> { Ok(conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))?) };
        let sizes: std::collections::HashMap<String, i64> = conn
            .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut tables = Vec::new();
        for t in TABLES.iter() {
            let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
            tables.push(serde_json::json!({ "name": t, "rows": rows, "bytes": sizes.get(*t) }));
        }
        let last_backup = reader::query(
            conn,
            &cairn_events::EventFilter {
                event_type: Some("DatabaseBackedUp".into()),
                ..Default::default()
            },
        )?;
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        Ok(serde_json::json!({
            "path": db,
            "size_bytes": file_size(&db),
            "wal_bytes": file_size(std::path::Path::new(&wal)),
            "page_size": pragma("page_size")?,
            "page_count": pragma("page_count")?,
            "freelist_count": pragma("freelist_count")?,
            "schema_version": pragma("user_version")?,
            "sqlite_version": rusqlite::version(),
            "journal_mode": conn.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))?,
            "tables": tables,
            "last_backup": last_backup.events.last().map(cairn_events::RecordedEvent::to_json),
        }))
    })
    .await?;
    Ok(ok(StatusCode::OK, body, None))
}

/// The WAL size over which health warns.
const WAL_WARN: u64 = 256 << 20;

pub async fn health(state: &AppState) -> Result<Response, ApiError> {
    let db = crate::datadir::db_path(state.cairn.root());
    let head = state.cairn.store().head();
    let body = read(state, move |conn| {
        let mut checks = Vec::new();
        let integrity: Vec<String> = conn.prepare("PRAGMA integrity_check")?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        let intact = integrity == ["ok"];
        checks.push(serde_json::json!({ "name": "integrity_check", "ok": intact, "detail": integrity.join("; ") }));
        let fk: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
        checks.push(serde_json::json!({ "name": "foreign_key_check", "ok": fk == 0, "detail": format!("{fk} violations") }));
        let chain = reader::verify_chain(conn, |_| {})?;
        checks.push(serde_json::json!({
            "name": "chain", "ok": chain.first_bad.is_none(),
            "detail": chain.first_bad.as_ref().map_or_else(|| format!("{} events verified", chain.checked), |b| b.to_string()),
        }));
        let lowest = cairn_projections::checkpoints::lowest(conn)?;
        checks.push(serde_json::json!({
            "name": "projections", "ok": lowest >= head.min(reader::head(conn)?),
            "detail": format!("checkpoint {lowest}, head {head}"),
        }));
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let wal_bytes = file_size(std::path::Path::new(&wal));
        checks.push(serde_json::json!({ "name": "wal_size", "ok": wal_bytes < WAL_WARN, "detail": format!("{wal_bytes} bytes (warns at {WAL_WARN})") }));
        let ok = checks.iter().all(|c| c["ok"] == true);
        Ok(serde_json::json!({ "ok": ok, "checks": checks }))
    })
    .await?;
    Ok(ok(StatusCode::OK, body, None))
}

pub async fn table(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let table = table_name(&req)?;
    let query = req.list_query()?;
    let body = read(state, move |conn| {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?
            .into_iter()
            .filter(|c| !HIDDEN.contains(&c.as_str()))
            .collect();
        let order = query.order_by(
            &columns.iter().map(String::as_str).collect::<Vec<_>>(),
            &format!("{} ASC", columns[0]),
        )?;
        let total: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM {table} ORDER BY {order} LIMIT ?1 OFFSET ?2",
            columns.join(", ")
        ))?;
        let mut rows = stmt.query(rusqlite::params![i64::from(query.per_page), query.offset()])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut obj = Map::new();
            for (i, c) in columns.iter().enumerate() {
                obj.insert(c.clone(), value(row.get_ref(i)?));
            }
            out.push(Value::Object(obj));
        }
        let page = cairn_projections::Page::new(out, &query, total);
        Ok(serde_json::json!({ "table": table, "columns": columns, "page": page }))
    })
    .await?;
    Ok(ok(StatusCode::OK, body, None))
}

fn no_event_fits(table: &str, what: &str) -> ApiError {
    ApiError::Conflict {
        code: "NO_EVENT_FITS",
        message: format!("{what} a row of {table} has no event; read tables change only through events"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientRowChange {
    name: Option<String>,
    ip_address: Option<String>,
}

/// Row edits become the domain's events; where no event fits (and always on `events`), 409.
pub async fn patch_row(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let table = table_name(&req)?;
    match table {
        "events" => Err(ApiError::Conflict {
            code: "EVENTS_IMMUTABLE",
            message: "events are never changed".into(),
        }),
        "clients" => {
            let id = req.id(1, "ROW_NOT_FOUND", "clients row")?;
            let change: ClientRowChange = req.json().await.map_err(|e| match e {
                ApiError::BadRequest {
                    code: "INVALID_JSON",
                    message,
                } => ApiError::Conflict {
                    code: "NO_EVENT_FITS",
                    message: format!("only name and ip_address of a client can change ({message})"),
                },
                other => other,
            })?;
            let command = UpdateClient {
                id,
                name: change.name,
                ip_address: change.ip_address,
                expected_version: None,
            };
            let done = state.cairn.execute(command, req.metadata()).await?;
            Ok(ok(
                StatusCode::OK,
                serde_json::json!({ "positions": done.positions }),
                Some("recorded as ClientUpdated"),
            ))
        }
        other => Err(no_event_fits(other, "changing")),
    }
}

pub async fn delete_row(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let table = table_name(&req)?;
    let done = match table {
        "events" => {
            return Err(ApiError::Conflict {
                code: "EVENTS_IMMUTABLE",
                message: "events are never deleted".into(),
            })
        }
        "clients" => {
            let id = req.id(1, "ROW_NOT_FOUND", "clients row")?;
            state
                .cairn
                .execute(
                    DeleteClient {
                        id,
                        expected_version: None,
                    },
                    req.metadata(),
                )
                .await?
                .positions
        }
        "files" => {
            let id = req.id(1, "ROW_NOT_FOUND", "files row")?;
            state
                .cairn
                .execute(
                    DeleteFile {
                        file_id: id,
                        expected_version: None,
                    },
                    req.metadata(),
                )
                .await?
                .positions
        }
        other => return Err(no_event_fits(other, "deleting")),
    };
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({ "positions": done }),
        Some("recorded as events"),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    sql: String,
}

/// Lets the console read the allowed tables of `main` and call functions, and nothing else. A read with no
/// database is of a common table expression, not of a stored table.
fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Select | AuthAction::Function { .. } | AuthAction::Recursive => Authorization::Allow,
        AuthAction::Read {
            table_name,
            column_name,
        } => match ctx.database_name {
            None => Authorization::Allow,
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

/// Runs one statement on a read-only connection with [`authorize`], a time limit and a row cap.
pub fn run_query(conn: &Connection, sql: &str) -> Result<Value, ApiError> {
    let started = Instant::now();
    conn.authorizer(Some(authorize))?;
    conn.progress_handler(10_000, Some(move || started.elapsed() > QUERY_TIME))?;
    let result = (|| -> Result<Value, ApiError> {
        let mut stmt = conn
            .prepare(sql)
            .map_err(|e| ApiError::bad("QUERY_REFUSED", format!("{e}")))?;
        if !stmt.readonly() {
            return Err(ApiError::bad("QUERY_REFUSED", "only statements that read are allowed"));
        }
        let columns: Vec<String> = stmt.column_names().iter().map(|c| (*c).to_owned()).collect();
        let mut rows = stmt
            .query([])
            .map_err(|e| ApiError::bad("QUERY_REFUSED", e.to_string()))?;
        let mut out = Vec::new();
        let mut truncated = false;
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    if out.len() == QUERY_ROWS {
                        truncated = true;
                        break;
                    }
                    let cells: Vec<Value> = (0..columns.len())
                        .map(|i| row.get_ref(i).map(value))
                        .collect::<rusqlite::Result<_>>()?;
                    out.push(Value::Array(cells));
                }
                Ok(None) => break,
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) => {
                    return Err(ApiError::bad(
                        "QUERY_TIMEOUT",
                        format!("the query ran longer than {} s", QUERY_TIME.as_secs()),
                    ));
                }
                Err(e) => return Err(ApiError::bad("QUERY_REFUSED", e.to_string())),
            }
        }
        Ok(
            serde_json::json!({ "columns": columns, "rows": out, "truncated": truncated, "row_cap": QUERY_ROWS, "elapsed_ms": started.elapsed().as_millis() as u64 }),
        )
    })();
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)?;
    conn.progress_handler(0, None::<fn() -> bool>)?;
    result
}

pub async fn query(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let q: Query = req.json().await?;
    if q.sql.trim().is_empty() {
        return Err(ApiError::validation("sql must not be empty"));
    }
    let db = crate::datadir::db_path(state.cairn.root());
    let body = tokio::task::spawn_blocking(move || {
        // Its own read-only connection, so the authorizer never touches a pooled one.
        let conn = schema::open_read_only(&db)?;
        run_query(&conn, &q.sql)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(ok(StatusCode::OK, body, None))
}

pub async fn backup(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let dir = state.cairn.root().join("backups");
    let name = format!("cairn-{}.db", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
    let dest = dir.join(&name);
    let db = crate::datadir::db_path(state.cairn.root());
    let path = dest.clone();
    let bytes = tokio::task::spawn_blocking(move || -> Result<u64, ApiError> {
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        let conn = schema::open_read_only(&db)?;
        Ok(schema::backup_to(&conn, &path)?)
    })
    .await
    .map_err(ApiError::internal)??;
    let event = DatabaseBackedUp {
        destination: dest.display().to_string(),
        bytes,
    };
    state
        .cairn
        .execute(crate::commands::server::RecordServerEvent(event.into()), req.metadata())
        .await?;
    Ok(ok(
        StatusCode::CREATED,
        serde_json::json!({ "path": dest, "bytes": bytes }),
        Some("backup written"),
    ))
}

/// `ANALYZE` and `PRAGMA optimize`, run by the writer (which owns the only read-write connection), recorded as
/// `DatabaseOptimized` in the same transaction.
pub async fn optimize(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let metadata = req.metadata().to_json();
    let bytes = |conn: &Connection| -> rusqlite::Result<u64> {
        conn.query_row(
            "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|b| b as u64)
    };
    let (before, after) = state
        .cairn
        .store()
        .writer()
        .execute(move |unit| -> Result<(u64, u64), StoreError> {
            let before = bytes(unit.conn())?;
            unit.conn().execute_batch("ANALYZE; PRAGMA optimize;")?;
            let after = bytes(unit.conn())?;
            let event = DomainEvent::from(DatabaseOptimized {
                bytes_before: before,
                bytes_after: after,
            });
            unit.append(
                &event.stream(),
                ExpectedVersion::Any,
                vec![NewEvent::typed(Uuid::now_v7(), event, metadata)],
            )
            .map_err(|e| StoreError::Commit(e.to_string()))?;
            Ok((before, after))
        })
        .await?;
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({ "bytes_before": before, "bytes_after": after }),
        Some("optimized"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        drop(schema::open_writable(&path, Default::default()).unwrap());
        let conn = schema::open_read_only(&path).unwrap();
        (dir, conn)
    }

    #[test]
    fn the_console_reads_the_allowed_tables_and_refuses_everything_else() {
        let (_dir, conn) = db();
        let ok = run_query(&conn, "SELECT count(*) AS n FROM events").unwrap();
        assert_eq!(ok["rows"][0][0], 0);
        assert_eq!(
            run_query(&conn, "SELECT token_hash FROM clients").unwrap()["rows"],
            serde_json::json!([])
        );
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
            "not sql at all",
        ] {
            let err = run_query(&conn, sql).unwrap_err();
            assert!(
                matches!(
                    err,
                    ApiError::BadRequest {
                        code: "QUERY_REFUSED",
                        ..
                    }
                ),
                "{sql}: {err:?}"
            );
        }
        let slow = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r";
        let timed_out = run_query(&conn, slow);
        assert!(
            matches!(
                timed_out,
                Err(ApiError::BadRequest {
                    code: "QUERY_TIMEOUT",
                    ..
                })
            ),
            "{timed_out:?}"
        );
        let many = run_query(
            &conn,
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 5000) SELECT i FROM r",
        )
        .unwrap();
        assert_eq!(
            (many["rows"].as_array().unwrap().len(), many["truncated"].clone()),
            (QUERY_ROWS, serde_json::json!(true))
        );
    }
}
