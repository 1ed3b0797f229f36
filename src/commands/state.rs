//! What commands read before deciding: the [`State`] trait, and [`SqlState`] over the writer's connection.

use cairn_events::{StoreError, Unit};
use cairn_projections::{alerts, clients, files, logs, runs, transfers, ClientStatus, TransferStatus};
use uuid::Uuid;

/// What a client's rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientState {
    pub id: Uuid,
    pub name: String,
    pub status: ClientStatus,
    pub version: i64,
    pub token_hash: String,
    /// When its last backup completed (RFC 3339).
    pub last_backup_at: Option<String>,
    pub backup_interval_seconds: u64,
    pub backup_overdue: bool,
}

/// What a file's rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub id: Uuid,
    pub client_id: Uuid,
    pub sha256: String,
    pub crc32: u32,
    pub size: u64,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferState {
    pub id: Uuid,
    pub status: TransferStatus,
}

/// What a backup run's rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub id: Uuid,
    pub client_id: Uuid,
    /// `running` until it finished; then its outcome.
    pub status: String,
    pub version: i64,
}

/// What an alert target's rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTargetState {
    pub id: Uuid,
    pub version: i64,
    /// Its rules' ids.
    pub rules: Vec<Uuid>,
}

/// The current state, as commands see it.
pub trait State {
    fn client(&self, id: Uuid) -> Result<Option<ClientState>, StoreError>;
    /// Names are unique without regard to case.
    fn client_by_name(&self, name: &str) -> Result<Option<ClientState>, StoreError>;
    /// A stream's version (0 if it never existed): tells a deleted entity from an unknown one.
    fn stream_version(&self, stream: &str) -> Result<i64, StoreError>;
    fn file(&self, id: Uuid) -> Result<Option<FileState>, StoreError>;
    fn files_of_client(&self, id: Uuid) -> Result<Vec<FileState>, StoreError>;
    fn transfer(&self, id: Uuid) -> Result<Option<TransferState>, StoreError>;
    fn log_count(&self) -> Result<u64, StoreError>;
    fn alert_target(&self, id: Uuid) -> Result<Option<AlertTargetState>, StoreError>;
    /// An alert rule's target, if the rule exists.
    fn alert_rule(&self, id: Uuid) -> Result<Option<Uuid>, StoreError>;
    /// How many files hold this content.
    fn holders(&self, sha256: &str) -> Result<u64, StoreError>;
    /// The size of content no file holds that is kept for its retention, if it is.
    fn retained(&self, sha256: &str) -> Result<Option<u64>, StoreError>;
    fn run(&self, id: Uuid) -> Result<Option<RunState>, StoreError>;
    /// The size and CRC-32 of a content this client stored before, if it did.
    fn client_content(&self, client: Uuid, sha256: &str) -> Result<Option<(u64, u32)>, StoreError>;
}

/// Reads the read tables on the writer's own connection, inside the batch's transaction.
pub struct SqlState<'a, 'w> {
    unit: &'a Unit<'w>,
}

impl<'a, 'w> SqlState<'a, 'w> {
    pub fn new(unit: &'a Unit<'w>) -> Self {
        Self { unit }
    }
}

fn uuid(text: &str) -> Uuid {
    // The read tables hold only ids the commands wrote from `Uuid`s.
    Uuid::parse_str(text).unwrap_or_default()
}

fn client_state(c: clients::Client) -> ClientState {
    ClientState {
        id: uuid(&c.id),
        name: c.name,
        status: c.status,
        version: c.version,
        token_hash: c.token_hash,
        last_backup_at: c.last_backup_at,
        backup_interval_seconds: u64::try_from(c.backup_interval_seconds).unwrap_or(0),
        backup_overdue: c.backup_overdue_since.is_some(),
    }
}

fn file_state(f: files::File) -> FileState {
    FileState {
        id: uuid(&f.id),
        client_id: uuid(&f.client_id),
        sha256: f.checksum,
        crc32: f.crc32,
        size: u64::try_from(f.size).unwrap_or(0),
        version: f.version,
    }
}

impl State for SqlState<'_, '_> {
    fn client(&self, id: Uuid) -> Result<Option<ClientState>, StoreError> {
        Ok(clients::get(self.unit.conn(), &id.to_string())?.map(client_state))
    }

    fn client_by_name(&self, name: &str) -> Result<Option<ClientState>, StoreError> {
        Ok(clients::by_name(self.unit.conn(), name)?.map(client_state))
    }

    fn stream_version(&self, stream: &str) -> Result<i64, StoreError> {
        self.unit.stream_version(stream)
    }

    fn file(&self, id: Uuid) -> Result<Option<FileState>, StoreError> {
        Ok(files::get(self.unit.conn(), &id.to_string())?.map(file_state))
    }

    fn files_of_client(&self, id: Uuid) -> Result<Vec<FileState>, StoreError> {
        Ok(files::of_client(self.unit.conn(), &id.to_string())?
            .into_iter()
            .map(file_state)
            .collect())
    }

    fn transfer(&self, id: Uuid) -> Result<Option<TransferState>, StoreError> {
        Ok(
            transfers::get(self.unit.conn(), &id.to_string())?.map(|t| TransferState {
                id: uuid(&t.id),
                status: t.status,
            }),
        )
    }

    fn log_count(&self) -> Result<u64, StoreError> {
        Ok(u64::try_from(logs::count(self.unit.conn())?).unwrap_or(0))
    }

    fn alert_target(&self, id: Uuid) -> Result<Option<AlertTargetState>, StoreError> {
        let conn = self.unit.conn();
        let Some(t) = alerts::target_by_id(conn, &id.to_string())? else {
            return Ok(None);
        };
        let rules = alerts::rules_of(conn, &t.id)?.iter().map(|r| uuid(&r.id)).collect();
        Ok(Some(AlertTargetState {
            id,
            version: t.version,
            rules,
        }))
    }

    fn alert_rule(&self, id: Uuid) -> Result<Option<Uuid>, StoreError> {
        Ok(alerts::rule_by_id(self.unit.conn(), &id.to_string())?.map(|r| uuid(&r.target_id)))
    }

    fn holders(&self, sha256: &str) -> Result<u64, StoreError> {
        let n: i64 = self
            .unit
            .conn()
            .prepare_cached("SELECT count(*) FROM files WHERE checksum = ?1")?
            .query_row([sha256], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn retained(&self, sha256: &str) -> Result<Option<u64>, StoreError> {
        Ok(cairn_projections::retained::size_of(self.unit.conn(), sha256)?)
    }

    fn run(&self, id: Uuid) -> Result<Option<RunState>, StoreError> {
        Ok(runs::get(self.unit.conn(), &id.to_string())?.and_then(|r| {
            Some(RunState {
                id,
                client_id: Uuid::parse_str(&r.client_id).ok()?,
                status: r.status,
                version: r.version,
            })
        }))
    }

    fn client_content(&self, client: Uuid, sha256: &str) -> Result<Option<(u64, u32)>, StoreError> {
        Ok(runs::client_content(self.unit.conn(), &client.to_string(), sha256)?)
    }
}
