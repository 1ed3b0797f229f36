//! Client commands: register, update, connect (heartbeat), disconnect, rotate token, delete.

use cairn_events::catalogue::{
    ClientBackupOverdue, ClientConnected, ClientDeleted, ClientDisconnected, ClientRegistered, ClientTokenRotated,
    ClientUpdated, DisconnectReason, FileDeleted,
};
use cairn_events::ExpectedVersion;
use cairn_projections::ClientStatus;
use uuid::Uuid;

use super::{live_client, token_hash, validate, Command, Decision, State};
use crate::error::CommandError;

/// The longest client name.
pub const MAX_NAME: usize = 100;

/// Registers a new client. The caller generates its id and token; the token is returned once and only its hash
/// is recorded.
#[derive(Debug, Clone)]
pub struct RegisterClient {
    pub id: Uuid,
    pub name: String,
    /// The identifier the backup client reports for itself; defaults to `id`.
    pub client_id: Option<String>,
    pub ip_address: Option<String>,
    pub token: String,
}

impl Command for RegisterClient {
    type Output = Uuid;

    fn decide(self, state: &dyn State) -> Result<Decision<Uuid>, CommandError> {
        let name = validate::name("name", &self.name, MAX_NAME)?;
        let external_id = match self.client_id.as_deref().map(str::trim) {
            None | Some("") => self.id.to_string(),
            Some(given) => validate::name("client_id", given, 128)?,
        };
        let ip_address = validate::ip_address(self.ip_address.as_deref())?;
        if state.client_by_name(&name)?.is_some() {
            return Err(CommandError::NameTaken(name));
        }
        Ok(Decision::new(self.id).event(
            ClientRegistered {
                client_id: self.id,
                external_id,
                name,
                ip_address,
                token_hash: token_hash(&self.token),
            },
            ExpectedVersion::NoStream,
        ))
    }
}

/// Renames a client or changes its address. `expected_version` makes the change conditional.
#[derive(Debug, Clone)]
pub struct UpdateClient {
    pub id: Uuid,
    pub name: Option<String>,
    pub ip_address: Option<String>,
    /// How often a backup is expected, in seconds.
    pub backup_interval_seconds: Option<u64>,
    pub expected_version: Option<i64>,
}

/// A client's expected backup interval until one is set: a day.
pub const DEFAULT_BACKUP_INTERVAL: u64 = 24 * 60 * 60;
/// The longest expected backup interval: a leap year.
pub const MAX_BACKUP_INTERVAL: u64 = 366 * 24 * 60 * 60;

impl Command for UpdateClient {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        let client = live_client(state, self.id)?;
        let mut name = self.name.map(|n| validate::name("name", &n, MAX_NAME)).transpose()?;
        let ip_address = validate::ip_address(self.ip_address.as_deref())?;
        if let Some(n) = &name {
            if *n == client.name {
                name = None;
            } else if let Some(other) = state.client_by_name(n)? {
                if other.id != client.id {
                    return Err(CommandError::NameTaken(n.clone()));
                }
            }
        }
        let mut backup_interval_seconds = self.backup_interval_seconds;
        if let Some(i) = backup_interval_seconds {
            if !(1..=MAX_BACKUP_INTERVAL).contains(&i) {
                return Err(CommandError::invalid(
                    "backup_interval_seconds",
                    format!("must be from 1 to {MAX_BACKUP_INTERVAL} seconds (366 days)"),
                ));
            }
            if i == client.backup_interval_seconds {
                backup_interval_seconds = None;
            }
        }
        if name.is_none() && ip_address.is_none() && backup_interval_seconds.is_none() {
            return Ok(Decision::new(()));
        }
        let expected = self
            .expected_version
            .map_or(ExpectedVersion::StreamExists, ExpectedVersion::Exact);
        Ok(Decision::new(()).event(
            ClientUpdated {
                client_id: self.id,
                name,
                ip_address,
                backup_interval_seconds,
            },
            expected,
        ))
    }
}

/// A heartbeat: records `ClientConnected` when the client was not connected, and nothing otherwise (so that
/// heartbeats do not flood the log).
#[derive(Debug, Clone)]
pub struct ConnectClient {
    pub id: Uuid,
    pub ip_address: Option<String>,
}

/// Whether a heartbeat changed the client's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    Connected,
    AlreadyConnected,
}

impl Command for ConnectClient {
    type Output = Heartbeat;

    fn decide(self, state: &dyn State) -> Result<Decision<Heartbeat>, CommandError> {
        let client = live_client(state, self.id)?;
        let ip_address = validate::ip_address(self.ip_address.as_deref())?;
        if client.status == ClientStatus::Connected {
            return Ok(Decision::new(Heartbeat::AlreadyConnected));
        }
        Ok(Decision::new(Heartbeat::Connected).event(
            ClientConnected {
                client_id: self.id,
                ip_address,
            },
            ExpectedVersion::Exact(client.version),
        ))
    }
}

/// Marks a client's backup overdue, as the backup monitor saw it: `last_backup_at` and `interval_seconds` are
/// what its due time `due_at` was computed from. Records nothing when the client's clock moved meanwhile (a file
/// was stored, the interval changed) or it is already overdue, so a monitor racing an upload never marks a client
/// that has just backed up.
#[derive(Debug, Clone)]
pub struct MarkBackupOverdue {
    pub id: Uuid,
    pub last_backup_at: Option<String>,
    pub interval_seconds: u64,
    pub due_at: String,
}

impl Command for MarkBackupOverdue {
    type Output = bool;

    fn decide(self, state: &dyn State) -> Result<Decision<bool>, CommandError> {
        let client = live_client(state, self.id)?;
        if client.backup_overdue
            || client.last_backup_at != self.last_backup_at
            || client.backup_interval_seconds != self.interval_seconds
        {
            return Ok(Decision::new(false));
        }
        Ok(Decision::new(true).event(
            ClientBackupOverdue {
                client_id: self.id,
                last_backup_at: self.last_backup_at,
                interval_seconds: self.interval_seconds,
                due_at: self.due_at,
            },
            ExpectedVersion::Exact(client.version),
        ))
    }
}

/// Marks a client offline. An admin or the client itself may only disconnect a connected client; a timeout
/// of a client already offline records nothing.
#[derive(Debug, Clone)]
pub struct DisconnectClient {
    pub id: Uuid,
    pub reason: DisconnectReason,
    /// The client's last sign of life as the server's presence knew it (RFC 3339), recorded in the event.
    pub last_seen: Option<String>,
}

impl Command for DisconnectClient {
    type Output = bool;

    fn decide(self, state: &dyn State) -> Result<Decision<bool>, CommandError> {
        let client = live_client(state, self.id)?;
        if client.status != ClientStatus::Connected {
            return match self.reason {
                DisconnectReason::Timeout => Ok(Decision::new(false)),
                _ => Err(CommandError::ClientNotConnected(self.id)),
            };
        }
        Ok(Decision::new(true).event(
            ClientDisconnected {
                client_id: self.id,
                reason: self.reason,
                last_seen: self.last_seen,
            },
            ExpectedVersion::Exact(client.version),
        ))
    }
}

/// Replaces a client's token; the old one stops working at once.
#[derive(Debug, Clone)]
pub struct RotateToken {
    pub id: Uuid,
    pub token: String,
}

impl Command for RotateToken {
    type Output = ();

    fn decide(self, state: &dyn State) -> Result<Decision<()>, CommandError> {
        let client = live_client(state, self.id)?;
        Ok(Decision::new(()).event(
            ClientTokenRotated {
                client_id: self.id,
                token_hash: token_hash(&self.token),
            },
            ExpectedVersion::Exact(client.version),
        ))
    }
}

/// Deletes a client and, first, each of its files (so that every file's own history ends with its deletion).
/// Blobs no other file holds are removed after the commit.
#[derive(Debug, Clone)]
pub struct DeleteClient {
    pub id: Uuid,
    pub expected_version: Option<i64>,
    /// Keep its files' content for the retention period (see `release_deleted`).
    pub retain: bool,
}

impl Command for DeleteClient {
    type Output = usize;

    fn decide(self, state: &dyn State) -> Result<Decision<usize>, CommandError> {
        let client = live_client(state, self.id)?;
        if let Some(v) = self.expected_version {
            if v != client.version {
                return Err(CommandError::VersionConflict {
                    stream: cairn_events::catalogue::client_stream(self.id),
                    expected: v.to_string(),
                    actual: client.version,
                });
            }
        }
        let files = state.files_of_client(self.id)?;
        let mut decision = Decision::new(files.len());
        let deleted: Vec<(String, u64)> = files.iter().map(|f| (f.sha256.clone(), f.size)).collect();
        for f in files {
            decision = decision.event(
                FileDeleted {
                    file_id: f.id,
                    client_id: self.id,
                    sha256: f.sha256,
                    size: f.size,
                    reason: "client deleted".into(),
                    run_id: None,
                },
                ExpectedVersion::Exact(f.version),
            );
        }
        let decision = decision.event(
            ClientDeleted {
                client_id: self.id,
                name: client.name,
            },
            ExpectedVersion::Exact(client.version),
        );
        super::release_deleted(state, decision, &deleted, self.retain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::{given, registered, stored};
    use cairn_events::catalogue::{BlobsPurged, PurgedBlob};

    fn register(id: Uuid, name: &str) -> RegisterClient {
        RegisterClient {
            id,
            name: name.into(),
            client_id: None,
            ip_address: Some("192.168.1.4".into()),
            token: "secret".into(),
        }
    }

    #[test]
    fn registering_records_the_token_hash_and_not_the_token() {
        let id = Uuid::now_v7();
        given(vec![])
            .when(register(id, "  alpha "))
            .then_expect(vec![ClientRegistered {
                client_id: id,
                external_id: id.to_string(),
                name: "alpha".into(),
                ip_address: Some("192.168.1.4".into()),
                token_hash: token_hash("secret"),
            }
            .into()]);
    }

    #[test]
    fn a_name_is_unique_without_regard_to_case() {
        let a = Uuid::now_v7();
        given(vec![registered(a, "Alpha")])
            .when(register(Uuid::now_v7(), "ALPHA"))
            .then_error(|e| matches!(e, CommandError::NameTaken(n) if n == "ALPHA"));
    }

    #[test]
    fn empty_overlong_or_control_character_names_are_refused() {
        for bad in ["", "   ", &"x".repeat(MAX_NAME + 1), "tab\there", "nul\0"] {
            given(vec![])
                .when(register(Uuid::now_v7(), bad))
                .then_error(|e| matches!(e, CommandError::Invalid { field: "name", .. }));
        }
        let mut bad_ip = register(Uuid::now_v7(), "ok");
        bad_ip.ip_address = Some("999.1.1.1".into());
        given(vec![]).when(bad_ip).then_error(|e| {
            matches!(
                e,
                CommandError::Invalid {
                    field: "ip_address",
                    ..
                }
            )
        });
    }

    #[test]
    fn a_heartbeat_connects_once_and_then_records_nothing() {
        let a = Uuid::now_v7();
        given(vec![registered(a, "alpha")])
            .when(ConnectClient {
                id: a,
                ip_address: None,
            })
            .then_expect(vec![ClientConnected {
                client_id: a,
                ip_address: None,
            }
            .into()]);
        given(vec![
            registered(a, "alpha"),
            ClientConnected {
                client_id: a,
                ip_address: None,
            }
            .into(),
        ])
        .when(ConnectClient {
            id: a,
            ip_address: None,
        })
        .then_expect(vec![]);
    }

    #[test]
    fn commands_on_an_unknown_or_deleted_client_are_refused_distinctly() {
        let a = Uuid::now_v7();
        given(vec![])
            .when(ConnectClient {
                id: a,
                ip_address: None,
            })
            .then_error(|e| matches!(e, CommandError::ClientNotFound(_)));
        given(vec![
            registered(a, "alpha"),
            ClientDeleted {
                client_id: a,
                name: "alpha".into(),
            }
            .into(),
        ])
        .when(RotateToken {
            id: a,
            token: "t".into(),
        })
        .then_error(|e| matches!(e, CommandError::ClientDeleted(_)));
    }

    #[test]
    fn disconnecting_an_offline_client_is_refused_unless_it_is_a_timeout() {
        let a = Uuid::now_v7();
        given(vec![registered(a, "alpha")])
            .when(DisconnectClient {
                id: a,
                reason: DisconnectReason::Admin,
                last_seen: None,
            })
            .then_error(|e| matches!(e, CommandError::ClientNotConnected(_)));
        given(vec![registered(a, "alpha")])
            .when(DisconnectClient {
                id: a,
                reason: DisconnectReason::Timeout,
                last_seen: None,
            })
            .then_expect(vec![]);
        given(vec![
            registered(a, "alpha"),
            ClientConnected {
                client_id: a,
                ip_address: None,
            }
            .into(),
        ])
        .when(DisconnectClient {
            id: a,
            reason: DisconnectReason::Timeout,
            last_seen: None,
        })
        .then_expect(vec![ClientDisconnected {
            client_id: a,
            reason: DisconnectReason::Timeout,
            last_seen: None,
        }
        .into()]);
    }

    #[test]
    fn an_update_to_a_taken_name_is_refused_and_an_unchanged_one_records_nothing() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let update = |name: &str| UpdateClient {
            id: a,
            name: Some(name.into()),
            ip_address: None,
            backup_interval_seconds: None,
            expected_version: None,
        };
        given(vec![registered(a, "alpha"), registered(b, "bravo")])
            .when(update("Bravo"))
            .then_error(|e| matches!(e, CommandError::NameTaken(_)));
        given(vec![registered(a, "alpha")])
            .when(update("alpha"))
            .then_expect(vec![]);
        given(vec![registered(a, "alpha")])
            .when(update("Alpha"))
            .then_expect(vec![ClientUpdated {
                client_id: a,
                name: Some("Alpha".into()),
                ip_address: None,
                backup_interval_seconds: None,
            }
            .into()]);
    }

    #[test]
    fn a_backup_interval_is_bounded_and_an_unchanged_one_records_nothing() {
        let a = Uuid::now_v7();
        let every = |seconds| UpdateClient {
            id: a,
            name: None,
            ip_address: None,
            backup_interval_seconds: Some(seconds),
            expected_version: None,
        };
        for bad in [0, MAX_BACKUP_INTERVAL + 1] {
            given(vec![registered(a, "alpha")])
                .when(every(bad))
                .then_error(|e| matches!(e, CommandError::Invalid { .. }));
        }
        given(vec![registered(a, "alpha")])
            .when(every(DEFAULT_BACKUP_INTERVAL))
            .then_expect(vec![]);
        given(vec![registered(a, "alpha")])
            .when(every(3600))
            .then_expect(vec![ClientUpdated {
                client_id: a,
                name: None,
                ip_address: None,
                backup_interval_seconds: Some(3600),
            }
            .into()]);
    }

    #[test]
    fn a_backup_is_marked_overdue_once_and_not_when_a_file_was_stored_meanwhile() {
        let (a, f) = (Uuid::now_v7(), Uuid::now_v7());
        let overdue = |last: Option<String>| MarkBackupOverdue {
            id: a,
            last_backup_at: last,
            interval_seconds: DEFAULT_BACKUP_INTERVAL,
            due_at: "2026-12-02T00:00:00.000000Z".into(),
        };
        let marked = ClientBackupOverdue {
            client_id: a,
            last_backup_at: None,
            interval_seconds: DEFAULT_BACKUP_INTERVAL,
            due_at: "2026-12-02T00:00:00.000000Z".into(),
        };
        given(vec![registered(a, "alpha")])
            .when(overdue(None))
            .then_expect(vec![marked.clone().into()]);
        given(vec![registered(a, "alpha"), marked.clone().into()])
            .when(overdue(None))
            .then_expect(vec![]);
        // The monitor read the clock before a file was stored: the backup it thought missing has happened.
        given(vec![registered(a, "alpha"), stored(f, a, "s1", 3)])
            .when(overdue(None))
            .then_expect(vec![]);
        given(vec![registered(a, "alpha"), marked.into(), stored(f, a, "s1", 3)])
            .when(overdue(Some(f.to_string())))
            .then_expect(vec![ClientBackupOverdue {
                client_id: a,
                last_backup_at: Some(f.to_string()),
                interval_seconds: DEFAULT_BACKUP_INTERVAL,
                due_at: "2026-12-02T00:00:00.000000Z".into(),
            }
            .into()]);
    }

    #[test]
    fn deleting_a_client_without_retention_deletes_each_of_its_files_then_purges_their_content() {
        let a = Uuid::now_v7();
        let (f1, f2) = (Uuid::now_v7(), Uuid::now_v7());
        let decision = given(vec![
            registered(a, "alpha"),
            stored(f1, a, "s1", 3),
            stored(f2, a, "s1", 3),
        ])
        .when(DeleteClient {
            id: a,
            expected_version: None,
            retain: false,
        })
        .then_expect(vec![
            FileDeleted {
                file_id: f1,
                client_id: a,
                sha256: "s1".into(),
                size: 3,
                reason: "client deleted".into(),
                run_id: None,
            }
            .into(),
            FileDeleted {
                file_id: f2,
                client_id: a,
                sha256: "s1".into(),
                size: 3,
                reason: "client deleted".into(),
                run_id: None,
            }
            .into(),
            ClientDeleted {
                client_id: a,
                name: "alpha".into(),
            }
            .into(),
            BlobsPurged {
                blobs: vec![PurgedBlob {
                    sha256: "s1".into(),
                    size: 3,
                }],
                reason: "not retained".into(),
            }
            .into(),
        ]);
        assert_eq!(decision.release_blobs, vec!["s1".to_owned()]);
        given(vec![registered(a, "alpha")])
            .when(DeleteClient {
                id: a,
                expected_version: Some(7),
                retain: true,
            })
            .then_error(|e| matches!(e, CommandError::VersionConflict { actual: 1, .. }));
    }
}
