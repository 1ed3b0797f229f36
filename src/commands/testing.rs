//! Given/when/then for commands, without a database: `given` folds events into an in-memory [`State`], `when`
//! decides a command against it, `then_*` checks the outcome.

use std::collections::HashMap;

use cairn_events::catalogue::{ClientRegistered, FileStored};
use cairn_events::{DomainEvent, StoreError};
use cairn_projections::{ClientStatus, TransferStatus};
use uuid::Uuid;

use super::client::DEFAULT_BACKUP_INTERVAL;
use super::{AlertTargetState, ClientState, Command, Decision, FileState, RunState, State, TransferState};
use crate::error::CommandError;

#[derive(Default)]
pub struct MemoryState {
    clients: HashMap<Uuid, ClientState>,
    files: HashMap<Uuid, FileState>,
    transfers: HashMap<Uuid, TransferState>,
    versions: HashMap<String, i64>,
    logs: u64,
    alert_targets: HashMap<Uuid, AlertTargetState>,
    /// Each rule's target.
    alert_rules: HashMap<Uuid, Uuid>,
    /// Content no file holds, kept: its size.
    retained: HashMap<String, u64>,
    runs: HashMap<Uuid, RunState>,
    /// What each client stored: (client, sha256) → (size, crc32).
    contents: HashMap<(Uuid, String), (u64, u32)>,
}

impl MemoryState {
    fn fold(&mut self, event: &DomainEvent) {
        let version = {
            let v = self.versions.entry(event.stream()).or_default();
            *v += 1;
            *v
        };
        match event {
            DomainEvent::ClientRegistered(c) => {
                self.clients.insert(
                    c.client_id,
                    ClientState {
                        id: c.client_id,
                        name: c.name.clone(),
                        status: ClientStatus::Registered,
                        version,
                        token_hash: c.token_hash.clone(),
                        last_backup_at: None,
                        backup_interval_seconds: DEFAULT_BACKUP_INTERVAL,
                        backup_overdue: false,
                    },
                );
            }
            DomainEvent::ClientUpdated(c) => self.client(c.client_id, version, |s| {
                if let Some(n) = &c.name {
                    s.name = n.clone();
                }
                if let Some(i) = c.backup_interval_seconds {
                    s.backup_interval_seconds = i;
                }
            }),
            DomainEvent::ClientBackupOverdue(c) => self.client(c.client_id, version, |s| s.backup_overdue = true),
            DomainEvent::ClientConnected(c) => {
                self.client(c.client_id, version, |s| s.status = ClientStatus::Connected)
            }
            DomainEvent::ClientDisconnected(c) => {
                self.client(c.client_id, version, |s| s.status = ClientStatus::Offline)
            }
            DomainEvent::ClientTokenRotated(c) => {
                self.client(c.client_id, version, |s| s.token_hash = c.token_hash.clone())
            }
            DomainEvent::ClientDeleted(c) => {
                self.clients.remove(&c.client_id);
                self.contents.retain(|(client, _), _| *client != c.client_id);
            }
            DomainEvent::BackupRunStarted(r) => {
                self.runs.insert(
                    r.run_id,
                    RunState {
                        id: r.run_id,
                        client_id: r.client_id,
                        status: "running".into(),
                        version,
                    },
                );
            }
            DomainEvent::BackupRunFinished(r) => {
                if let Some(run) = self.runs.get_mut(&r.run_id) {
                    run.status = r.outcome.clone();
                    run.version = version;
                }
            }
            DomainEvent::FileStored(f) => {
                self.retained.remove(&f.sha256);
                self.contents
                    .entry((f.client_id, f.sha256.clone()))
                    .or_insert((f.size, f.crc32));
                // The in-memory state keeps no clock: the stored file's id stands for the time of the backup.
                if let Some(c) = self.clients.get_mut(&f.client_id) {
                    c.last_backup_at = Some(f.file_id.to_string());
                    c.backup_overdue = false;
                }
                self.files.insert(
                    f.file_id,
                    FileState {
                        id: f.file_id,
                        client_id: f.client_id,
                        sha256: f.sha256.clone(),
                        crc32: f.crc32,
                        size: f.size,
                        version,
                    },
                );
            }
            DomainEvent::FileVerified(f) => self.file(f.file_id, version),
            DomainEvent::FileDownloaded(f) => self.file(f.file_id, version),
            DomainEvent::FileDeleted(f) => {
                self.files.remove(&f.file_id);
                if !self.files.values().any(|x| x.sha256 == f.sha256) {
                    self.retained.insert(f.sha256.clone(), f.size);
                }
            }
            DomainEvent::BlobsPurged(p) => {
                for b in &p.blobs {
                    self.retained.remove(&b.sha256);
                }
            }
            DomainEvent::TransferStarted(t) => {
                self.transfers.insert(
                    t.transfer_id,
                    TransferState {
                        id: t.transfer_id,
                        status: TransferStatus::InProgress,
                    },
                );
            }
            DomainEvent::TransferCompleted(t) => self.transfer(t.transfer_id, TransferStatus::Completed),
            DomainEvent::TransferFailed(t) => self.transfer(t.transfer_id, TransferStatus::Failed),
            DomainEvent::LogRecorded(_) => self.logs += 1,
            DomainEvent::LogsCleared(_) => self.logs = 0,
            DomainEvent::AlertTargetAdded(t) => {
                self.alert_targets.insert(
                    t.target_id,
                    AlertTargetState {
                        id: t.target_id,
                        version,
                        rules: Vec::new(),
                    },
                );
            }
            DomainEvent::AlertTargetRemoved(t) => {
                self.alert_targets.remove(&t.target_id);
            }
            DomainEvent::AlertRuleAdded(r) => {
                self.alert_rules.insert(r.rule_id, r.target_id);
                if let Some(t) = self.alert_targets.get_mut(&r.target_id) {
                    t.rules.push(r.rule_id);
                }
            }
            DomainEvent::AlertRuleRemoved(r) => {
                if let Some(target) = self.alert_rules.remove(&r.rule_id) {
                    if let Some(t) = self.alert_targets.get_mut(&target) {
                        t.rules.retain(|id| *id != r.rule_id);
                    }
                }
            }
            DomainEvent::AlertTestRequested(cairn_events::catalogue::AlertTestRequested { target_id })
            | DomainEvent::AlertDelivered(cairn_events::catalogue::AlertDelivered { target_id, .. })
            | DomainEvent::AlertDeliveryFailed(cairn_events::catalogue::AlertDeliveryFailed { target_id, .. }) => {
                if let Some(t) = self.alert_targets.get_mut(target_id) {
                    t.version = version;
                }
            }
            _ => {}
        }
    }

    fn client(&mut self, id: Uuid, version: i64, f: impl FnOnce(&mut ClientState)) {
        if let Some(c) = self.clients.get_mut(&id) {
            f(c);
            c.version = version;
        }
    }

    fn file(&mut self, id: Uuid, version: i64) {
        if let Some(f) = self.files.get_mut(&id) {
            f.version = version;
        }
    }

    fn transfer(&mut self, id: Uuid, status: TransferStatus) {
        if let Some(t) = self.transfers.get_mut(&id) {
            t.status = status;
        }
    }
}

impl State for MemoryState {
    fn client(&self, id: Uuid) -> Result<Option<ClientState>, StoreError> {
        Ok(self.clients.get(&id).cloned())
    }
    fn client_by_name(&self, name: &str) -> Result<Option<ClientState>, StoreError> {
        Ok(self
            .clients
            .values()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .cloned())
    }
    fn stream_version(&self, stream: &str) -> Result<i64, StoreError> {
        Ok(self.versions.get(stream).copied().unwrap_or(0))
    }
    fn file(&self, id: Uuid) -> Result<Option<FileState>, StoreError> {
        Ok(self.files.get(&id).cloned())
    }
    fn files_of_client(&self, id: Uuid) -> Result<Vec<FileState>, StoreError> {
        let mut files: Vec<_> = self.files.values().filter(|f| f.client_id == id).cloned().collect();
        files.sort_by_key(|f| f.id);
        Ok(files)
    }
    fn transfer(&self, id: Uuid) -> Result<Option<TransferState>, StoreError> {
        Ok(self.transfers.get(&id).cloned())
    }
    fn log_count(&self) -> Result<u64, StoreError> {
        Ok(self.logs)
    }
    fn alert_target(&self, id: Uuid) -> Result<Option<AlertTargetState>, StoreError> {
        Ok(self.alert_targets.get(&id).cloned())
    }
    fn alert_rule(&self, id: Uuid) -> Result<Option<Uuid>, StoreError> {
        Ok(self.alert_rules.get(&id).copied())
    }
    fn holders(&self, sha256: &str) -> Result<u64, StoreError> {
        Ok(self.files.values().filter(|f| f.sha256 == sha256).count() as u64)
    }
    fn retained(&self, sha256: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.retained.get(sha256).copied())
    }
    fn run(&self, id: Uuid) -> Result<Option<RunState>, StoreError> {
        Ok(self.runs.get(&id).cloned())
    }
    fn client_content(&self, client: Uuid, sha256: &str) -> Result<Option<(u64, u32)>, StoreError> {
        Ok(self.contents.get(&(client, sha256.to_owned())).copied())
    }
}

pub struct Given {
    state: MemoryState,
}

pub fn given(events: Vec<DomainEvent>) -> Given {
    let mut state = MemoryState::default();
    for e in &events {
        state.fold(e);
    }
    Given { state }
}

pub struct When<T> {
    result: Result<Decision<T>, CommandError>,
}

impl Given {
    pub fn when<C: Command>(self, command: C) -> When<C::Output> {
        When {
            result: command.decide(&self.state),
        }
    }
}

impl<T: std::fmt::Debug> When<T> {
    /// Asserts the decided events (in order) and returns the decision for further checks.
    #[track_caller]
    pub fn then_expect(self, expected: Vec<DomainEvent>) -> Decision<T> {
        let decision = match self.result {
            Ok(d) => d,
            Err(e) => panic!("expected events, got the error {e:?}"),
        };
        let events: Vec<DomainEvent> = decision.events.iter().map(|(e, _)| e.clone()).collect();
        assert_eq!(events, expected);
        decision
    }

    /// Asserts how many events were decided, for a decision whose events are checked field by field.
    #[track_caller]
    pub fn then_expect_count(self, count: usize) -> Decision<T> {
        let decision = match self.result {
            Ok(d) => d,
            Err(e) => panic!("expected events, got the error {e:?}"),
        };
        assert_eq!(decision.events.len(), count, "{:?}", decision.events);
        decision
    }

    #[track_caller]
    pub fn then_error(self, matches: impl Fn(&CommandError) -> bool) {
        match self.result {
            Ok(d) => panic!("expected an error, got the decision {d:?}"),
            Err(e) => assert!(matches(&e), "unexpected error {e:?}"),
        }
    }
}

pub fn registered(id: Uuid, name: &str) -> DomainEvent {
    ClientRegistered {
        client_id: id,
        external_id: id.to_string(),
        name: name.into(),
        ip_address: None,
        token_hash: super::token_hash("secret"),
    }
    .into()
}

pub fn stored(file: Uuid, client: Uuid, sha256: &str, size: u64) -> DomainEvent {
    FileStored {
        file_id: file,
        client_id: client,
        client_name: "alpha".into(),
        filename: "f.txt".into(),
        original_path: "/f.txt".into(),
        size,
        sha256: sha256.into(),
        crc32: 1,
        mime_type: "text/plain".into(),
        transfer_id: None,
        mtime: None,
        mode: None,
        run_id: None,
    }
    .into()
}

impl<T: std::fmt::Debug> When<T> {
    /// Asserts success whatever the events, for tests that look at the decision itself.
    #[track_caller]
    pub fn then_expect_any(self) -> Decision<T> {
        match self.result {
            Ok(d) => d,
            Err(e) => panic!("expected a decision, got the error {e:?}"),
        }
    }
}
