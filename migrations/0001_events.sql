-- The event log: the source of truth. Only the writer appends; no row is ever updated or deleted.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,          -- global order, 1, 2, 3 ... with no gaps
    id          TEXT    NOT NULL UNIQUE,      -- event UUID: appending a stored id is an idempotent no-op
    stream      TEXT    NOT NULL,             -- client-<uuid>, file-<uuid>, transfer-<uuid>, log, server
    version     INTEGER NOT NULL,             -- 1, 2, 3 ... within the stream
    type        TEXT    NOT NULL,             -- past tense: ClientRegistered
    schema      INTEGER NOT NULL,             -- the event's schema version, for upcasting
    data        TEXT    NOT NULL,             -- JSON
    metadata    TEXT    NOT NULL,             -- JSON: actor, request_id, remote_addr, correlation_id, causation_id
    recorded_at TEXT    NOT NULL,             -- RFC 3339 UTC with microseconds
    crc         INTEGER NOT NULL,             -- CRC-32 of the canonical bytes
    hash        TEXT    NOT NULL,             -- hex SHA-256(previous hash || canonical bytes)
    UNIQUE (stream, version)
);

CREATE INDEX events_by_type ON events (type, position);
