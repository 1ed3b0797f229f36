-- Backup runs (BackupRunStarted / BackupRunFinished), what each file and transfer's run was, a file's mtime
-- and mode on its client (FileStored schema 2), each client's last run that finished ok (its last good backup
-- once it runs the agent), and the contents each client has stored (what `files/known` may record without the
-- bytes). Filled from the log for databases that already hold events, exactly as a replay would.
CREATE TABLE runs (
    id             TEXT    PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    status         TEXT    NOT NULL,          -- running, ok, partial, failed
    folders        TEXT    NOT NULL,          -- JSON array of strings
    agent_version  TEXT    NOT NULL,
    host           TEXT    NOT NULL,
    started_at     TEXT    NOT NULL,
    started_position INTEGER NOT NULL,
    finished_at    TEXT,
    finished_position INTEGER,
    duration_ms    INTEGER,
    scanned        INTEGER NOT NULL DEFAULT 0,
    new            INTEGER NOT NULL DEFAULT 0,
    changed        INTEGER NOT NULL DEFAULT 0,
    unchanged      INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    bytes_sent     INTEGER NOT NULL DEFAULT 0,
    bytes_skipped  INTEGER NOT NULL DEFAULT 0,
    errors         TEXT    NOT NULL DEFAULT '[]', -- JSON array of strings
    version        INTEGER NOT NULL
);
CREATE INDEX runs_by_client ON runs (client_id, started_position);
CREATE INDEX runs_by_status ON runs (status, finished_at);

ALTER TABLE files ADD COLUMN mtime TEXT;
ALTER TABLE files ADD COLUMN mode INTEGER;
ALTER TABLE files ADD COLUMN run_id TEXT;
ALTER TABLE transfers ADD COLUMN run_id TEXT;
ALTER TABLE clients ADD COLUMN last_run_at TEXT;
-- Content retained after its client deleted it (with its own token) is kept at least 30 days, whatever
-- --retain-deleted says: a compromised machine cannot erase its own backups.
ALTER TABLE retained_blobs ADD COLUMN by_client INTEGER NOT NULL DEFAULT 0;
UPDATE retained_blobs SET by_client = 1 WHERE position IN (
    SELECT position FROM events WHERE type = 'FileDeleted' AND json_extract(data, '$.reason') = 'client');

CREATE TABLE client_contents (
    client_id TEXT    NOT NULL,
    sha256    TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    crc32     INTEGER NOT NULL,
    PRIMARY KEY (client_id, sha256)
) WITHOUT ROWID;

INSERT OR IGNORE INTO client_contents (client_id, sha256, size, crc32)
    SELECT json_extract(data, '$.client_id'), json_extract(data, '$.sha256'), json_extract(data, '$.size'),
           json_extract(data, '$.crc32')
    FROM events
    WHERE type = 'FileStored' AND json_extract(data, '$.client_id') IN (SELECT id FROM clients);

INSERT OR IGNORE INTO projection_checkpoints (name, position, updated_at)
    SELECT 'runs', position, updated_at FROM projection_checkpoints WHERE name = 'clients';
