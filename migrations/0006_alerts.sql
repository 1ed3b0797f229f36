-- Alerts: the targets they go to, the rules that route them, and every delivery attempt. A target's
-- `delivered_through` is its checkpoint in the log: every event up to it was delivered (or given up on).
CREATE TABLE alert_targets (
    id                TEXT    PRIMARY KEY,   -- UUID (stream alert-target-<id>)
    name              TEXT    NOT NULL,
    kind              TEXT    NOT NULL,      -- webhook, email
    address           TEXT    NOT NULL,      -- the webhook's URL, or the e-mail address
    created_at        TEXT    NOT NULL,
    delivered_through INTEGER NOT NULL,      -- starts at the position that added it: no alert from before
    delivered         INTEGER NOT NULL DEFAULT 0,
    failed_attempts   INTEGER NOT NULL DEFAULT 0,
    last_delivered_at TEXT,
    last_error        TEXT,
    version           INTEGER NOT NULL
);

CREATE TABLE alert_rules (
    id         TEXT    PRIMARY KEY,          -- UUID (stream alert-rule-<id>)
    target_id  TEXT    NOT NULL,
    kinds      TEXT    NOT NULL,             -- a JSON array of alert kinds
    client_id  TEXT,                         -- only this client's alerts, when set
    created_at TEXT    NOT NULL,
    version    INTEGER NOT NULL
);
CREATE INDEX alert_rules_by_target ON alert_rules (target_id);

CREATE TABLE alert_deliveries (
    position         INTEGER PRIMARY KEY,    -- the position of the AlertDelivered or AlertDeliveryFailed event
    target_id        TEXT    NOT NULL,
    alerted_position INTEGER NOT NULL,       -- the event the alert was about
    kind             TEXT    NOT NULL,
    outcome          TEXT    NOT NULL,       -- delivered, failed (to be retried), gave_up
    attempt          INTEGER NOT NULL,
    error            TEXT,
    at               TEXT    NOT NULL
);
CREATE INDEX alert_deliveries_by_target ON alert_deliveries (target_id, position);

-- The alerts projection has applied every event the others have (none of them was an alert's).
INSERT OR IGNORE INTO projection_checkpoints (name, position, updated_at)
    SELECT 'alerts', position, updated_at FROM projection_checkpoints WHERE name = 'clients';
