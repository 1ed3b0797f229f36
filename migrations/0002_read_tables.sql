-- Read tables: projections of the event log. They can be dropped and rebuilt from `events` at any time.

CREATE TABLE clients (
    id          TEXT    PRIMARY KEY,          -- cairn's UUID for the client (stream client-<id>)
    client_id   TEXT    NOT NULL,             -- the identifier the backup client reports for itself
    name        TEXT    NOT NULL,
    status      TEXT    NOT NULL,             -- Registered, Connected, Offline
    last_seen   TEXT,
    files_count INTEGER NOT NULL DEFAULT 0,
    total_size  INTEGER NOT NULL DEFAULT 0,
    ip_address  TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL,             -- hex SHA-256 of the client's token; the token itself is never stored
    version     INTEGER NOT NULL              -- the client's stream version, for optimistic concurrency
);
CREATE UNIQUE INDEX clients_by_name ON clients (name COLLATE NOCASE);

CREATE TABLE files (
    id            TEXT    PRIMARY KEY,        -- UUID (stream file-<id>)
    filename      TEXT    NOT NULL,
    original_path TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    client_id     TEXT    NOT NULL,           -- clients.id
    client_name   TEXT    NOT NULL,
    uploaded_at   TEXT    NOT NULL,
    verified      INTEGER NOT NULL DEFAULT 0, -- 1 once a verification passed; 0 after a mismatch
    verified_at   TEXT,
    checksum      TEXT    NOT NULL,           -- hex SHA-256 of the content, also the blob's name
    crc32         INTEGER NOT NULL,
    mime_type     TEXT    NOT NULL,
    downloads     INTEGER NOT NULL DEFAULT 0,
    version       INTEGER NOT NULL
);
CREATE INDEX files_by_client ON files (client_id);
CREATE INDEX files_by_checksum ON files (checksum);
CREATE INDEX files_by_uploaded_at ON files (uploaded_at);

CREATE TABLE transfers (
    id             TEXT    PRIMARY KEY,       -- UUID (stream transfer-<id>)
    client_id      TEXT,
    file_id        TEXT,
    filename       TEXT    NOT NULL,
    direction      TEXT    NOT NULL,          -- upload, download
    status         TEXT    NOT NULL,          -- InProgress, Completed, Failed
    expected_bytes INTEGER,
    bytes          INTEGER NOT NULL DEFAULT 0,
    started_at     TEXT    NOT NULL,
    finished_at    TEXT,
    duration_ms    INTEGER,
    error          TEXT
);
CREATE INDEX transfers_by_status ON transfers (status);
CREATE INDEX transfers_by_client ON transfers (client_id);

CREATE TABLE logs (
    id          INTEGER PRIMARY KEY,          -- the position of the LogRecorded event
    level       TEXT    NOT NULL,             -- debug, info, warning, error, critical
    message     TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    client_id   TEXT,
    file_id     TEXT,
    recorded_at TEXT    NOT NULL
);
CREATE INDEX logs_by_recorded_at ON logs (recorded_at);
CREATE INDEX logs_by_level ON logs (level, id);

-- Per-minute buckets; hours and days are sums of minutes.
CREATE TABLE stats (
    bucket                 TEXT    PRIMARY KEY,  -- YYYY-MM-DDTHH:MM (UTC)
    uploads                INTEGER NOT NULL DEFAULT 0,
    bytes_in               INTEGER NOT NULL DEFAULT 0,
    downloads              INTEGER NOT NULL DEFAULT 0,
    bytes_out              INTEGER NOT NULL DEFAULT 0,
    verifications_passed   INTEGER NOT NULL DEFAULT 0,
    verifications_failed   INTEGER NOT NULL DEFAULT 0,
    registrations          INTEGER NOT NULL DEFAULT 0,
    deletions              INTEGER NOT NULL DEFAULT 0,
    errors                 INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Running totals since the first event: one row. (The number of events is the head position.)
CREATE TABLE stats_totals (
    id                     INTEGER PRIMARY KEY CHECK (id = 1),
    uploads                INTEGER NOT NULL DEFAULT 0,
    bytes_in               INTEGER NOT NULL DEFAULT 0,
    downloads              INTEGER NOT NULL DEFAULT 0,
    bytes_out              INTEGER NOT NULL DEFAULT 0,
    verifications_passed   INTEGER NOT NULL DEFAULT 0,
    verifications_failed   INTEGER NOT NULL DEFAULT 0,
    registrations          INTEGER NOT NULL DEFAULT 0,
    deletions              INTEGER NOT NULL DEFAULT 0,
    errors                 INTEGER NOT NULL DEFAULT 0
);
INSERT INTO stats_totals (id) VALUES (1);

-- How far each projection has applied the log (the position of the last event it saw).
CREATE TABLE projection_checkpoints (
    name       TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);
