-- Backup health per client: when its last backup completed (its last stored file), how often one is expected,
-- and since when it is overdue (set by ClientBackupOverdue, cleared by the next stored file). Filled here from
-- the log for databases that already hold events, exactly as a replay would.
ALTER TABLE clients ADD COLUMN last_backup_at TEXT;
ALTER TABLE clients ADD COLUMN backup_interval_seconds INTEGER NOT NULL DEFAULT 86400;
ALTER TABLE clients ADD COLUMN backup_overdue_since TEXT;

UPDATE clients SET last_backup_at = (
    SELECT max(recorded_at) FROM events
    WHERE type = 'FileStored' AND json_extract(data, '$.client_id') = clients.id
);
