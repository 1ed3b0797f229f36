//! Alert commands: targets and the rules that route alerts to them, a test alert, and the outcome of each
//! delivery attempt (which moves a target's checkpoint in the log).

use cairn_events::catalogue::{
    AlertDelivered, AlertDeliveryFailed, AlertKind, AlertRuleAdded, AlertRuleRemoved, AlertTargetAdded,
    AlertTargetKind, AlertTargetRemoved, AlertTestRequested,
};
use cairn_events::ExpectedVersion;
use uuid::Uuid;

use super::{live_client, validate, AlertTargetState, Command, Decision, State};
use crate::error::CommandError;

/// The longest webhook URL.
pub const MAX_URL: usize = 2048;
/// The longest error text a failed delivery records.
pub const MAX_ERROR: usize = 1024;

fn target(state: &dyn State, id: Uuid) -> Result<AlertTargetState, CommandError> {
    state.alert_target(id)?.ok_or(CommandError::AlertTargetNotFound(id))
}

/// A webhook's URL: absolute `http` or `https` with a host.
pub fn webhook_url(value: &str) -> Result<String, CommandError> {
    let v = value.trim();
    if v.len() > MAX_URL {
        return Err(CommandError::invalid(
            "address",
            format!("must be at most {MAX_URL} bytes"),
        ));
    }
    let url =
        reqwest::Url::parse(v).map_err(|e| CommandError::invalid("address", format!("{v:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(CommandError::invalid(
            "address",
            "a webhook must be an http:// or https:// URL with a host",
        ));
    }
    Ok(url.to_string())
}

/// An e-mail address, as SMTP takes it.
pub fn email_address(value: &str) -> Result<String, CommandError> {
    let v = value.trim();
    if v.len() > 254 {
        return Err(CommandError::invalid("address", "must be at most 254 bytes"));
    }
    v.parse::<lettre::Address>()
        .map(|a| a.to_string())
        .map_err(|e| CommandError::invalid("address", format!("{v:?} is not an e-mail address ({e})")))
}

#[derive(Debug, Clone)]
pub struct AddTarget {
    pub id: Uuid,
    pub name: String,
    pub kind: AlertTargetKind,
    pub address: String,
}

impl Command for AddTarget {
    type Output = Uuid;

    fn decide(self, _: &dyn State) -> Result<Decision<Uuid>, CommandError> {
        let name = validate::name("name", &self.name, 100)?;
        let address = match self.kind {
            AlertTargetKind::Webhook => webhook_url(&self.address)?,
            AlertTargetKind::Email => email_address(&self.address)?,
        };
        Ok(Decision::new(self.id).event(
            AlertTargetAdded {
                target_id: self.id,
                name,
                kind: self.kind,
                address,
            },
            ExpectedVersion::NoStream,
        ))
    }
}

/// Removes a target and, first, each rule that routes to it.
#[derive(Debug, Clone)]
pub struct RemoveTarget {
    pub id: Uuid,
}

impl Command for RemoveTarget {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        let t = target(state, self.id)?;
        let mut decision = Decision::new(());
        for rule in t.rules {
            decision = decision.event(AlertRuleRemoved { rule_id: rule }, ExpectedVersion::StreamExists);
        }
        Ok(decision.event(
            AlertTargetRemoved { target_id: self.id },
            ExpectedVersion::Exact(t.version),
        ))
    }
}

#[derive(Debug, Clone)]
pub struct AddRule {
    pub id: Uuid,
    pub target_id: Uuid,
    pub kinds: Vec<AlertKind>,
    pub client_id: Option<Uuid>,
}

impl Command for AddRule {
    type Output = Uuid;

    fn decide(self, state: &dyn State) -> Result<Decision<Uuid>, CommandError> {
        target(state, self.target_id)?;
        if let Some(c) = self.client_id {
            live_client(state, c)?;
        }
        let mut kinds = Vec::new();
        for kind in self.kinds {
            if kind == AlertKind::Test {
                return Err(CommandError::invalid(
                    "kinds",
                    "test alerts go to their target without a rule",
                ));
            }
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.is_empty() {
            return Err(CommandError::invalid("kinds", "must name at least one kind"));
        }
        Ok(Decision::new(self.id).event(
            AlertRuleAdded {
                rule_id: self.id,
                target_id: self.target_id,
                kinds,
                client_id: self.client_id,
            },
            ExpectedVersion::NoStream,
        ))
    }
}

#[derive(Debug, Clone)]
pub struct RemoveRule {
    pub id: Uuid,
}

impl Command for RemoveRule {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        state
            .alert_rule(self.id)?
            .ok_or(CommandError::AlertRuleNotFound(self.id))?;
        Ok(Decision::new(()).event(AlertRuleRemoved { rule_id: self.id }, ExpectedVersion::StreamExists))
    }
}

/// Asks for a test alert to one target; the dispatcher sends it like any other.
#[derive(Debug, Clone)]
pub struct RequestTest {
    pub target_id: Uuid,
}

impl Command for RequestTest {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        let t = target(state, self.target_id)?;
        Ok(Decision::new(()).event(
            AlertTestRequested {
                target_id: self.target_id,
            },
            ExpectedVersion::Exact(t.version),
        ))
    }
}

/// One delivery attempt's outcome, for the alert about the event at `position`.
#[derive(Debug, Clone)]
pub enum Attempt {
    Delivered,
    /// Failed; tried again later unless `gave_up`.
    Failed {
        error: String,
        gave_up: bool,
    },
}

#[derive(Debug, Clone)]
pub struct RecordAttempt {
    pub target_id: Uuid,
    pub position: u64,
    pub kind: AlertKind,
    /// The attempt's number, from 1.
    pub attempt: u32,
    pub outcome: Attempt,
}

impl Command for RecordAttempt {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        target(state, self.target_id)?;
        let (target_id, position, kind) = (self.target_id, self.position, self.kind);
        let decision = Decision::new(());
        Ok(match self.outcome {
            Attempt::Delivered => decision.event(
                AlertDelivered {
                    target_id,
                    position,
                    kind,
                    attempts: self.attempt,
                },
                ExpectedVersion::StreamExists,
            ),
            Attempt::Failed { mut error, gave_up } => {
                if error.len() > MAX_ERROR {
                    let mut cut = MAX_ERROR;
                    while !error.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    error.truncate(cut);
                }
                decision.event(
                    AlertDeliveryFailed {
                        target_id,
                        position,
                        kind,
                        attempt: self.attempt,
                        error,
                        gave_up,
                    },
                    ExpectedVersion::StreamExists,
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::{given, registered};

    fn added(id: Uuid) -> cairn_events::DomainEvent {
        AlertTargetAdded {
            target_id: id,
            name: "ops".into(),
            kind: AlertTargetKind::Webhook,
            address: "http://127.0.0.1:9/hook".into(),
        }
        .into()
    }

    #[test]
    fn a_target_needs_a_webhook_url_or_an_email_address_of_its_kind() {
        let add = |kind, address: &str| AddTarget {
            id: Uuid::nil(),
            name: "ops".into(),
            kind,
            address: address.into(),
        };
        for (kind, bad) in [
            (AlertTargetKind::Webhook, "ftp://example.com/x"),
            (AlertTargetKind::Webhook, "not a url"),
            (AlertTargetKind::Webhook, "file:///etc/passwd"),
            (AlertTargetKind::Email, "ops at example.com"),
            (AlertTargetKind::Email, "http://example.com"),
        ] {
            given(vec![])
                .when(add(kind, bad))
                .then_error(|e| matches!(e, CommandError::Invalid { field: "address", .. }));
        }
        given(vec![])
            .when(add(AlertTargetKind::Email, " ops@example.com "))
            .then_expect(vec![AlertTargetAdded {
                target_id: Uuid::nil(),
                name: "ops".into(),
                kind: AlertTargetKind::Email,
                address: "ops@example.com".into(),
            }
            .into()]);
    }

    #[test]
    fn a_rule_names_kinds_once_never_test_and_an_existing_target_and_client() {
        let (t, r, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let rule = |kinds: Vec<AlertKind>, client_id| AddRule {
            id: r,
            target_id: t,
            kinds,
            client_id,
        };
        given(vec![])
            .when(rule(vec![AlertKind::TransferFailed], None))
            .then_error(|e| matches!(e, CommandError::AlertTargetNotFound(_)));
        given(vec![added(t)])
            .when(rule(vec![], None))
            .then_error(|e| matches!(e, CommandError::Invalid { field: "kinds", .. }));
        given(vec![added(t)])
            .when(rule(vec![AlertKind::Test], None))
            .then_error(|e| matches!(e, CommandError::Invalid { field: "kinds", .. }));
        given(vec![added(t)])
            .when(rule(vec![AlertKind::TransferFailed], Some(c)))
            .then_error(|e| matches!(e, CommandError::ClientNotFound(_)));
        given(vec![added(t), registered(c, "alpha")])
            .when(rule(
                vec![
                    AlertKind::TransferFailed,
                    AlertKind::BackupOverdue,
                    AlertKind::TransferFailed,
                ],
                Some(c),
            ))
            .then_expect(vec![AlertRuleAdded {
                rule_id: r,
                target_id: t,
                kinds: vec![AlertKind::TransferFailed, AlertKind::BackupOverdue],
                client_id: Some(c),
            }
            .into()]);
    }

    #[test]
    fn removing_a_target_removes_its_rules_first() {
        let (t, r) = (Uuid::now_v7(), Uuid::now_v7());
        given(vec![
            added(t),
            AlertRuleAdded {
                rule_id: r,
                target_id: t,
                kinds: vec![AlertKind::ChainBroken],
                client_id: None,
            }
            .into(),
        ])
        .when(RemoveTarget { id: t })
        .then_expect(vec![
            AlertRuleRemoved { rule_id: r }.into(),
            AlertTargetRemoved { target_id: t }.into(),
        ]);
        given(vec![])
            .when(RemoveRule { id: r })
            .then_error(|e| matches!(e, CommandError::AlertRuleNotFound(_)));
    }

    #[test]
    fn a_failed_attempts_error_is_cut_to_its_limit_on_a_character_boundary() {
        let t = Uuid::now_v7();
        let decision = given(vec![added(t)])
            .when(RecordAttempt {
                target_id: t,
                position: 7,
                kind: AlertKind::Test,
                attempt: 1,
                outcome: Attempt::Failed {
                    error: "é".repeat(MAX_ERROR),
                    gave_up: false,
                },
            })
            .then_expect_count(1);
        let cairn_events::DomainEvent::AlertDeliveryFailed(f) = &decision.events[0].0 else {
            panic!("{decision:?}")
        };
        assert!(f.error.len() <= MAX_ERROR && f.error.chars().all(|c| c == 'é'));
    }
}
