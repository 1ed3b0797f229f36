//! Alerts: a subscriber of the log that sends what its rules route (a failed transfer or verification, an
//! overdue backup, a heartbeat timeout, a broken chain, a nearly full disk) to webhooks and e-mail addresses.
//!
//! Each target has a worker that reads the log after the target's checkpoint (`delivered_through`, moved by
//! the `AlertDelivered` it records after each delivery), so an alert is delivered at least once across restarts
//! and receiver outages: a failed attempt is recorded (`AlertDeliveryFailed`) and tried again with a doubling
//! backoff, and the worker does not move past it until it is delivered or refused for good (a 4xx other than
//! 408 and 429, a permanent SMTP error). Rules, targets and every attempt are events, so the audit trail shows
//! who set what up and what reached whom. A receiver sees an alert again only if cairn stopped between
//! sending it and recording it; the `Idempotency-Key` header (target and position) lets it tell.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cairn_events::catalogue::{AlertKind, AlertTargetKind};
use cairn_events::{reader, Metadata, RecordedEvent};
use cairn_projections::alerts::{self, Rule, Target};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{ServiceError, Services};
use crate::commands::alert::{AddRule, AddTarget, Attempt, RecordAttempt, RemoveRule, RemoveTarget, RequestTest};
use crate::error::CommandError;
use crate::Cairn;

/// How alerts are sent.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// The SMTP relay e-mail goes through (`smtp://host:25`, `smtp://host:587?tls=required`,
    /// `smtps://user:password@host`); e-mail targets are refused without one.
    pub smtp: Option<String>,
    /// The sender of alert e-mail.
    pub smtp_from: String,
    /// The wait before the first retry; it doubles after each failed attempt, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// How often an idle worker looks for new events besides being woken by each commit.
    pub poll: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            smtp: None,
            smtp_from: "cairn <cairn@localhost>".into(),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
        }
    }
}

/// The targets, with the rules that route to each.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AlertsSetup {
    pub targets: Vec<Target>,
    pub rules: Vec<Rule>,
    /// Every kind a rule can name.
    pub kinds: Vec<AlertKind>,
    /// Whether e-mail targets can be delivered (the server has an SMTP relay).
    pub email: bool,
}

pub async fn setup(services: &Services) -> Result<AlertsSetup, ServiceError> {
    let email = services.config.alerts.smtp.is_some();
    services
        .read(move |conn| {
            Ok(AlertsSetup {
                targets: alerts::targets(conn)?,
                rules: alerts::rules(conn)?,
                kinds: AlertKind::ROUTED.to_vec(),
                email,
            })
        })
        .await
}

/// Adds a target (refusing e-mail when the server has no relay to send it through).
pub async fn add_target(
    services: &Services,
    name: String,
    kind: AlertTargetKind,
    address: String,
    metadata: Metadata,
) -> Result<Target, ServiceError> {
    if kind == AlertTargetKind::Email && services.config.alerts.smtp.is_none() {
        return Err(ServiceError::conflict(
            "SMTP_NOT_CONFIGURED",
            "e-mail alerts need an SMTP relay: start the server with --smtp URL",
        ));
    }
    let id = Uuid::now_v7();
    services
        .cairn
        .execute(
            AddTarget {
                id,
                name,
                kind,
                address,
            },
            metadata,
        )
        .await?;
    target(services, id).await
}

pub async fn target(services: &Services, id: Uuid) -> Result<Target, ServiceError> {
    services
        .read(move |conn| {
            alerts::target_by_id(conn, &id.to_string())?.ok_or_else(|| CommandError::AlertTargetNotFound(id).into())
        })
        .await
}

pub async fn remove_target(services: &Services, id: Uuid, metadata: Metadata) -> Result<(), ServiceError> {
    services.cairn.execute(RemoveTarget { id }, metadata).await?;
    Ok(())
}

pub async fn add_rule(
    services: &Services,
    target_id: Uuid,
    kinds: Vec<AlertKind>,
    client_id: Option<Uuid>,
    metadata: Metadata,
) -> Result<Rule, ServiceError> {
    let id = Uuid::now_v7();
    let command = AddRule {
        id,
        target_id,
        kinds,
        client_id,
    };
    services.cairn.execute(command, metadata).await?;
    services
        .read(move |conn| {
            alerts::rule_by_id(conn, &id.to_string())?.ok_or_else(|| CommandError::AlertRuleNotFound(id).into())
        })
        .await
}

pub async fn remove_rule(services: &Services, id: Uuid, metadata: Metadata) -> Result<(), ServiceError> {
    services.cairn.execute(RemoveRule { id }, metadata).await?;
    Ok(())
}

/// Asks for a test alert to a target; answers the position of the request, the event the alert is about.
pub async fn test(services: &Services, target_id: Uuid, metadata: Metadata) -> Result<i64, ServiceError> {
    let done = services.cairn.execute(RequestTest { target_id }, metadata).await?;
    Ok(done.positions.first().copied().unwrap_or_default())
}

/// `--alert-webhook URL` (or `--alert-email ADDRESS`): a target for it routed every kind, unless a target of
/// that kind and address exists already (so restarting with the same flag adds nothing).
pub async fn ensure_target(
    services: &Services,
    kind: AlertTargetKind,
    address: &str,
) -> Result<Option<Target>, ServiceError> {
    let address = match kind {
        AlertTargetKind::Webhook => crate::commands::alert::webhook_url(address)?,
        AlertTargetKind::Email => crate::commands::alert::email_address(address)?,
    };
    let existing = setup(services).await?;
    if existing.targets.iter().any(|t| t.kind == kind && t.address == address) {
        return Ok(None);
    }
    let name = match kind {
        AlertTargetKind::Webhook => "webhook (--alert-webhook)",
        AlertTargetKind::Email => "e-mail (--alert-email)",
    };
    let t = add_target(services, name.into(), kind, address, Metadata::system()).await?;
    let id = Uuid::parse_str(&t.id).map_err(ServiceError::internal)?;
    add_rule(services, id, AlertKind::ROUTED.to_vec(), None, Metadata::system()).await?;
    Ok(Some(t))
}

/// One alert: what a receiver is sent.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// `critical`, `error`, `warning` or `info`.
    pub severity: &'static str,
    pub title: String,
    pub message: String,
    /// Slack-compatible receivers show this.
    pub text: String,
    /// Gotify's priority (0 to 10).
    pub priority: u8,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub event: AlertedEvent,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertedEvent {
    pub position: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub stream: String,
    pub recorded_at: String,
    pub data: Value,
}

/// The kind of alert an event raises, if any, and the client it concerns.
fn kind_of(e: &RecordedEvent, data: &Value, target: Uuid) -> Option<AlertKind> {
    Some(match e.event_type.as_str() {
        "TransferFailed" => AlertKind::TransferFailed,
        "FileVerified" if data["ok"] == false => AlertKind::VerificationFailed,
        "ClientBackupOverdue" => AlertKind::BackupOverdue,
        "ClientDisconnected" if data["reason"] == "timeout" => AlertKind::ClientTimeout,
        "ChainBroken" => AlertKind::ChainBroken,
        "DiskNearlyFull" => AlertKind::DiskNearlyFull,
        "FleetSiteBroken" => AlertKind::SiteBroken,
        "AlertTestRequested" if data["target_id"].as_str() == Some(&target.to_string()) => AlertKind::Test,
        _ => return None,
    })
}

fn severity(kind: AlertKind) -> (&'static str, u8) {
    match kind {
        AlertKind::ChainBroken | AlertKind::VerificationFailed | AlertKind::SiteBroken => ("critical", 9),
        AlertKind::TransferFailed | AlertKind::DiskNearlyFull => ("error", 7),
        AlertKind::BackupOverdue | AlertKind::ClientTimeout => ("warning", 5),
        AlertKind::Test => ("info", 3),
    }
}

/// The alert `e` raises for `target` under `rules`, with names read from the tables.
fn alert_for(conn: &Connection, e: &RecordedEvent, target: Uuid, rules: &[Rule]) -> rusqlite::Result<Option<Alert>> {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    let Some(kind) = kind_of(e, &data, target) else {
        return Ok(None);
    };
    let client_id = super::activity::client_of(conn, e, &data)?;
    let routed = kind == AlertKind::Test
        || rules
            .iter()
            .any(|r| r.kinds.contains(&kind) && r.client_id.as_ref().is_none_or(|c| Some(c) == client_id.as_ref()));
    if !routed {
        return Ok(None);
    }
    let client_name = match &client_id {
        Some(id) => cairn_projections::clients::get(conn, id)?.map(|c| c.name),
        None => None,
    };
    let line = super::activity::describe(e);
    let (title, message) = match (&client_name, &client_id) {
        (Some(name), _) => (format!("cairn: {} ({name})", headline(kind)), format!("{name}: {line}")),
        (None, Some(id)) => (
            format!("cairn: {} (client {})", headline(kind), id.get(..8).unwrap_or(id)),
            line,
        ),
        (None, None) => (format!("cairn: {}", headline(kind)), line),
    };
    let (severity, priority) = severity(kind);
    Ok(Some(Alert {
        kind,
        severity,
        text: format!("{title}\n{message}"),
        title,
        message,
        priority,
        client_id,
        client_name,
        event: AlertedEvent {
            position: e.position,
            event_type: e.event_type.clone(),
            stream: e.stream.clone(),
            recorded_at: e.recorded_at.clone(),
            data,
        },
    }))
}

fn headline(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::TransferFailed => "transfer failed",
        AlertKind::VerificationFailed => "verification failed",
        AlertKind::BackupOverdue => "backup overdue",
        AlertKind::ClientTimeout => "client stopped answering",
        AlertKind::ChainBroken => "the log's hash chain is broken",
        AlertKind::DiskNearlyFull => "disk nearly full",
        AlertKind::SiteBroken => "a site's published log is broken",
        AlertKind::Test => "test alert",
    }
}

/// Why an attempt failed: worth another try, or refused for good.
#[derive(Debug)]
enum Failure {
    Transient(String),
    Permanent(String),
}

/// How alerts leave the process: one HTTP client and one SMTP transport for every worker.
struct Senders {
    http: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Option<Mailbox>,
    timeout: Duration,
}

impl Senders {
    fn new(config: &AlertConfig) -> Result<Self, String> {
        crate::tls::install();
        let http = reqwest::Client::builder()
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        let smtp = match &config.smtp {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("--smtp {url:?}: {e}"))?
                    .timeout(Some(config.timeout))
                    .build(),
            ),
            None => None,
        };
        let from = config.smtp_from.parse::<Mailbox>().ok();
        Ok(Self {
            http,
            smtp,
            from,
            timeout: config.timeout,
        })
    }

    async fn send(&self, target: &Target, alert: &Alert, attempt: u32) -> Result<(), Failure> {
        match target.kind {
            AlertTargetKind::Webhook => self.post(target, alert, attempt).await,
            AlertTargetKind::Email => self.mail(target, alert).await,
        }
    }

    async fn post(&self, target: &Target, alert: &Alert, attempt: u32) -> Result<(), Failure> {
        let response = self
            .http
            .post(&target.address)
            .timeout(self.timeout)
            .header("idempotency-key", format!("{}-{}", target.id, alert.event.position))
            .header("x-cairn-attempt", attempt.to_string())
            .json(alert)
            .send()
            .await
            .map_err(|e| Failure::Transient(error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let said = format!("HTTP {status}: {}", body.chars().take(200).collect::<String>());
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(Failure::Transient(said))
        } else {
            Err(Failure::Permanent(said))
        }
    }

    async fn mail(&self, target: &Target, alert: &Alert) -> Result<(), Failure> {
        let Some(smtp) = &self.smtp else {
            return Err(Failure::Transient(
                "no SMTP relay is configured (cairn serve --smtp URL)".into(),
            ));
        };
        let from = self
            .from
            .clone()
            .ok_or_else(|| Failure::Permanent("--smtp-from is not an e-mail address".into()))?;
        let to = target
            .address
            .parse::<Mailbox>()
            .map_err(|e| Failure::Permanent(format!("{}: {e}", target.address)))?;
        let body = format!(
            "{}\n\nSeverity: {}\nEvent: {} at position {} ({})\nStream: {}\n\n{}\n",
            alert.message,
            alert.severity,
            alert.event.event_type,
            alert.event.position,
            alert.event.recorded_at,
            alert.event.stream,
            serde_json::to_string_pretty(&alert.event.data).unwrap_or_default()
        );
        let message = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(&alert.title)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        match smtp.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Failure::Permanent(error_chain(&e))),
            Err(e) => Err(Failure::Transient(error_chain(&e))),
        }
    }
}

/// An error with its sources, which say what actually went wrong ("connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The most events a worker reads at once.
const BATCH: usize = 256;

/// Runs until aborted: a worker per target, started as targets are added and stopped as they are removed.
pub async fn dispatch(services: Services) {
    // Building the TLS client reads the system's certificates: blocking work, off the async workers.
    let config = services.config.alerts.clone();
    let senders = match tokio::task::spawn_blocking(move || Senders::new(&config)).await {
        Ok(Ok(s)) => Arc::new(s),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "alerts are off");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "alerts are off");
            return;
        }
    };
    let mut workers = tokio::task::JoinSet::new();
    let mut running: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
    let mut committed = services.cairn.store().writer().subscribe();
    loop {
        match super::read(&services.cairn, |conn| Ok(alerts::targets(conn)?)).await {
            Ok(targets) => {
                let ids: HashSet<String> = targets.iter().map(|t| t.id.clone()).collect();
                running.retain(|id, handle| {
                    let keep = ids.contains(id) && !handle.is_finished();
                    if !keep {
                        handle.abort();
                    }
                    keep
                });
                for t in targets {
                    if let (false, Ok(id)) = (running.contains_key(&t.id), Uuid::parse_str(&t.id)) {
                        let handle = workers.spawn(worker(services.clone(), senders.clone(), id));
                        running.insert(t.id, handle);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the alert targets"),
        }
        // Reap finished workers so the set does not grow.
        while workers.try_join_next().is_some() {}
        // Look again when a target is added or removed (or the broadcast lagged), or after a while anyway.
        let changed = async {
            loop {
                match committed.recv().await {
                    Ok(e) if e.event_type.starts_with("AlertTarget") => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    // The store is closing: only the timer is left.
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            () = changed => {}
            () = tokio::time::sleep(services.config.alerts.poll * 5) => {}
        }
    }
}

/// The next alert for a target after `after`, and how far the log was read to find it (or not).
fn next_alert(conn: &Connection, target: Uuid, after: i64) -> rusqlite::Result<Option<(Target, Option<Alert>, i64)>> {
    let Some(t) = alerts::target_by_id(conn, &target.to_string())? else {
        return Ok(None);
    };
    let rules = alerts::rules_of(conn, &t.id)?;
    let from = after.max(t.delivered_through);
    let head = reader::head(conn)?;
    if head <= from {
        return Ok(Some((t, None, from)));
    }
    let mut types: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.kinds.iter().map(|k| k.event_type()))
        .collect();
    types.push(AlertKind::Test.event_type());
    types.sort_unstable();
    types.dedup();
    let marks = vec!["?"; types.len()].join(", ");
    let sql = format!(
        "SELECT {} FROM events WHERE position > ? AND type IN ({marks}) ORDER BY position LIMIT {BATCH}",
        reader::COLUMNS
    );
    let mut params: Vec<rusqlite::types::Value> = vec![from.into()];
    params.extend(types.iter().map(|t| rusqlite::types::Value::Text((*t).to_owned())));
    let candidates: Vec<RecordedEvent> = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(params), reader::from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let full = candidates.len() == BATCH;
    for e in &candidates {
        if let Some(alert) = alert_for(conn, e, target, &rules)? {
            return Ok(Some((t, Some(alert), e.position - 1)));
        }
    }
    // Nothing here for this target: everything up to the head read (or the last candidate) is done with.
    let read = match candidates.last() {
        Some(last) if full => last.position,
        Some(last) => last.position.max(head),
        None => head,
    };
    Ok(Some((t, None, read)))
}

async fn worker(services: Services, senders: Arc<Senders>, target: Uuid) {
    let config = services.config.alerts.clone();
    // Woken by every commit (so an alert leaves as soon as its event is in the log), and by the poll when the
    // broadcast lagged or nothing was committed.
    let mut committed = services.cairn.store().writer().subscribe();
    // How far this worker has read the log; the checkpoint in the log is the target's `delivered_through`.
    let mut read = 0;
    loop {
        let found = super::read(&services.cairn, move |conn| Ok(next_alert(conn, target, read)?)).await;
        let (t, alert) = match found {
            Ok(Some((t, alert, upto))) => {
                read = upto;
                (t, alert)
            }
            // Removed.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(target = %target, error = %e, "could not read the log for alerts");
                tokio::time::sleep(config.poll * 4).await;
                continue;
            }
        };
        let Some(alert) = alert else {
            let commit = async {
                if let Err(broadcast::error::RecvError::Closed) = committed.recv().await {
                    // The store is closing: only the timer is left.
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = commit => {}
                () = tokio::time::sleep(config.poll) => {}
            }
            // One read for everything committed meanwhile, not one per event.
            while !matches!(
                committed.try_recv(),
                Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
            ) {}
            continue;
        };
        if !deliver(&services.cairn, &senders, &config, &t, target, &alert).await {
            return;
        }
        read = alert.event.position;
    }
}

/// Sends one alert until it is delivered or refused for good, recording every attempt. Answers false when the
/// target went away meanwhile.
async fn deliver(
    cairn: &Cairn,
    senders: &Senders,
    config: &AlertConfig,
    t: &Target,
    target: Uuid,
    alert: &Alert,
) -> bool {
    let mut wait = config.backoff;
    let mut attempt = 1;
    loop {
        let outcome = senders.send(t, alert, attempt).await;
        let (recorded, again) = match outcome {
            Ok(()) => (Attempt::Delivered, false),
            Err(Failure::Permanent(error)) => (Attempt::Failed { error, gave_up: true }, false),
            Err(Failure::Transient(error)) => (Attempt::Failed { error, gave_up: false }, true),
        };
        if let Attempt::Failed { error, gave_up } = &recorded {
            tracing::warn!(target = %t.name, position = alert.event.position, attempt, gave_up, error = %error, "an alert was not delivered");
        }
        let command = RecordAttempt {
            target_id: target,
            position: u64::try_from(alert.event.position).unwrap_or(0),
            kind: alert.kind,
            attempt,
            outcome: recorded,
        };
        match cairn.execute(command, Metadata::system()).await {
            Ok(_) => {}
            Err(CommandError::AlertTargetNotFound(_)) => return false,
            // Delivered but not recorded: it will be sent again after a restart (at least once).
            Err(e) => tracing::warn!(target = %t.name, error = %e, "could not record an alert's delivery"),
        }
        if !again {
            return true;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(config.max_backoff);
        attempt += 1;
        let still = super::read(cairn, move |conn| Ok(alerts::target_by_id(conn, &target.to_string())?)).await;
        if matches!(still, Ok(None)) {
            return false;
        }
    }
}

/// Delivery attempts, newest first (one target's with `target_id`).
pub async fn deliveries(
    services: &Services,
    query: cairn_projections::ListQuery,
    target_id: Option<Uuid>,
) -> Result<cairn_projections::Page<alerts::Delivery>, ServiceError> {
    services
        .read(move |conn| {
            let id = target_id.map(|t| t.to_string());
            Ok(alerts::deliveries(conn, &query, id.as_deref())?)
        })
        .await
}
