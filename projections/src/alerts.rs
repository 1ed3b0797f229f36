//! The alerts' read tables: `alert_targets` (with each target's checkpoint in the log), `alert_rules`, and
//! `alert_deliveries` (every attempt, delivered or not).

use cairn_events::catalogue::{AlertKind, AlertTargetKind};
use cairn_events::{ApplyError, DomainEvent, RecordedEvent};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::query::{paged, Conditions, ListQuery, Page};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub kind: AlertTargetKind,
    /// The webhook's URL, or the e-mail address.
    pub address: String,
    pub created_at: String,
    /// Its checkpoint: every alert about an event up to this position was delivered (or given up on).
    pub delivered_through: i64,
    /// Alerts delivered.
    pub delivered: i64,
    /// Attempts that failed (each retried, unless given up).
    pub failed_attempts: i64,
    pub last_delivered_at: Option<String>,
    /// The last failed attempt's error, until the next delivery.
    pub last_error: Option<String>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Rule {
    pub id: String,
    pub target_id: String,
    pub kinds: Vec<AlertKind>,
    /// Only this client's alerts, when set.
    pub client_id: Option<String>,
    /// The client's name now.
    pub client_name: Option<String>,
    pub created_at: String,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Delivery {
    /// The position of the event that recorded this attempt.
    pub position: i64,
    pub target_id: String,
    /// The event the alert was about.
    pub alerted_position: i64,
    pub kind: AlertKind,
    /// `delivered`, `failed` (to be tried again) or `gave_up`.
    pub outcome: String,
    pub attempt: i64,
    pub error: Option<String>,
    pub at: String,
}

fn kind_of<T: serde::de::DeserializeOwned>(text: &str, at: usize) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, Box::new(e)))
}

const TARGET_COLUMNS: &str = "id, name, kind, address, created_at, delivered_through, delivered, failed_attempts, \
                              last_delivered_at, last_error, version";

fn target(r: &Row<'_>) -> rusqlite::Result<Target> {
    Ok(Target {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: kind_of(&r.get::<_, String>(2)?, 2)?,
        address: r.get(3)?,
        created_at: r.get(4)?,
        delivered_through: r.get(5)?,
        delivered: r.get(6)?,
        failed_attempts: r.get(7)?,
        last_delivered_at: r.get(8)?,
        last_error: r.get(9)?,
        version: r.get(10)?,
    })
}

const RULE_COLUMNS: &str = "id, target_id, kinds, client_id, \
                            (SELECT name FROM clients WHERE clients.id = alert_rules.client_id), created_at, version";

fn rule(r: &Row<'_>) -> rusqlite::Result<Rule> {
    let kinds: String = r.get(2)?;
    Ok(Rule {
        id: r.get(0)?,
        target_id: r.get(1)?,
        kinds: serde_json::from_str(&kinds)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?,
        client_id: r.get(3)?,
        client_name: r.get(4)?,
        created_at: r.get(5)?,
        version: r.get(6)?,
    })
}

fn delivery(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        position: r.get(0)?,
        target_id: r.get(1)?,
        alerted_position: r.get(2)?,
        kind: kind_of(&r.get::<_, String>(3)?, 3)?,
        outcome: r.get(4)?,
        attempt: r.get(5)?,
        error: r.get(6)?,
        at: r.get(7)?,
    })
}

fn record_delivery(conn: &Connection, d: &Delivery) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO alert_deliveries (position, target_id, alerted_position, kind, outcome, attempt, error, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        d.position,
        d.target_id,
        d.alerted_position,
        d.kind.as_str(),
        d.outcome,
        d.attempt,
        d.error,
        d.at
    ])?;
    Ok(())
}

pub fn apply(conn: &Connection, e: &RecordedEvent, event: &DomainEvent) -> Result<(), ApplyError> {
    let at = &e.recorded_at;
    match event {
        DomainEvent::AlertTargetAdded(t) => {
            let kind = match t.kind {
                AlertTargetKind::Webhook => "webhook",
                AlertTargetKind::Email => "email",
            };
            conn.prepare_cached(
                "INSERT INTO alert_targets (id, name, kind, address, created_at, delivered_through, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                t.target_id.to_string(),
                t.name,
                kind,
                t.address,
                at,
                e.position,
                e.version
            ])?;
        }
        DomainEvent::AlertTargetRemoved(t) => {
            conn.prepare_cached("DELETE FROM alert_targets WHERE id = ?1")?
                .execute([t.target_id.to_string()])?;
        }
        DomainEvent::AlertRuleAdded(r) => {
            let kinds = serde_json::to_string(&r.kinds).unwrap_or_else(|_| "[]".into());
            conn.prepare_cached(
                "INSERT INTO alert_rules (id, target_id, kinds, client_id, created_at, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                r.rule_id.to_string(),
                r.target_id.to_string(),
                kinds,
                r.client_id.map(|c| c.to_string()),
                at,
                e.version
            ])?;
        }
        DomainEvent::AlertRuleRemoved(r) => {
            conn.prepare_cached("DELETE FROM alert_rules WHERE id = ?1")?
                .execute([r.rule_id.to_string()])?;
        }
        DomainEvent::AlertTestRequested(t) => {
            conn.prepare_cached("UPDATE alert_targets SET version = ?2 WHERE id = ?1")?
                .execute(params![t.target_id.to_string(), e.version])?;
        }
        DomainEvent::AlertDelivered(d) => {
            let id = d.target_id.to_string();
            conn.prepare_cached(
                "UPDATE alert_targets SET delivered_through = max(delivered_through, ?2), delivered = delivered + 1,
                 last_delivered_at = ?3, last_error = NULL, version = ?4 WHERE id = ?1",
            )?
            .execute(params![id, d.position as i64, at, e.version])?;
            let row = Delivery {
                position: e.position,
                target_id: id,
                alerted_position: d.position as i64,
                kind: d.kind,
                outcome: "delivered".into(),
                attempt: i64::from(d.attempts),
                error: None,
                at: at.clone(),
            };
            record_delivery(conn, &row)?;
        }
        DomainEvent::AlertDeliveryFailed(d) => {
            let id = d.target_id.to_string();
            // Given up on, the alert is settled: the checkpoint moves past it.
            let through = if d.gave_up { d.position as i64 } else { 0 };
            conn.prepare_cached(
                "UPDATE alert_targets SET delivered_through = max(delivered_through, ?2),
                 failed_attempts = failed_attempts + 1, last_error = ?3, version = ?4 WHERE id = ?1",
            )?
            .execute(params![id, through, d.error, e.version])?;
            let row = Delivery {
                position: e.position,
                target_id: id,
                alerted_position: d.position as i64,
                kind: d.kind,
                outcome: if d.gave_up { "gave_up" } else { "failed" }.into(),
                attempt: i64::from(d.attempt),
                error: Some(d.error.clone()),
                at: at.clone(),
            };
            record_delivery(conn, &row)?;
        }
        _ => {}
    }
    Ok(())
}

pub fn targets(conn: &Connection) -> rusqlite::Result<Vec<Target>> {
    conn.prepare_cached(&format!(
        "SELECT {TARGET_COLUMNS} FROM alert_targets ORDER BY created_at, id"
    ))?
    .query_map([], target)?
    .collect()
}

pub fn target_by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<Target>> {
    conn.prepare_cached(&format!("SELECT {TARGET_COLUMNS} FROM alert_targets WHERE id = ?1"))?
        .query_row([id], target)
        .optional()
}

pub fn rules(conn: &Connection) -> rusqlite::Result<Vec<Rule>> {
    conn.prepare_cached(&format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY created_at, id"
    ))?
    .query_map([], rule)?
    .collect()
}

pub fn rules_of(conn: &Connection, target_id: &str) -> rusqlite::Result<Vec<Rule>> {
    conn.prepare_cached(&format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE target_id = ?1 ORDER BY created_at, id"
    ))?
    .query_map([target_id], rule)?
    .collect()
}

pub fn rule_by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<Rule>> {
    conn.prepare_cached(&format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?1"))?
        .query_row([id], rule)
        .optional()
}

/// Delivery attempts, newest first; only one target's when `target_id` is set.
pub fn deliveries(
    conn: &Connection,
    query: &ListQuery,
    target_id: Option<&str>,
) -> Result<Page<Delivery>, crate::Error> {
    let mut c = Conditions::default();
    if let Some(t) = target_id {
        c.add("target_id = ?", [Value::Text(t.to_owned())]);
    }
    Ok(paged(
        conn,
        "alert_deliveries",
        "position, target_id, alerted_position, kind, outcome, attempt, error, at",
        &c,
        "position DESC",
        query,
        delivery,
    )?)
}
