-- Content no file holds any more, kept for the retention period so that a restore of a moment before its
-- deletion still has it; BlobsPurged takes a row out. Filled here as a replay of the log would fill it: every
-- content whose last file was deleted (a cairn from before retention removed those blobs then; the server's
-- first purge records them as already gone).
CREATE TABLE retained_blobs (
    sha256   TEXT    PRIMARY KEY,
    size     INTEGER NOT NULL,
    since    TEXT    NOT NULL,   -- when its last file was deleted
    position INTEGER NOT NULL    -- the FileDeleted that left it unheld
);
CREATE INDEX retained_blobs_by_since ON retained_blobs (since);

INSERT INTO retained_blobs (sha256, size, since, position)
    SELECT json_extract(data, '$.sha256'), max(json_extract(data, '$.size')), max(recorded_at), max(position)
    FROM events
    WHERE type = 'FileDeleted' AND json_extract(data, '$.sha256') NOT IN (SELECT checksum FROM files)
    GROUP BY json_extract(data, '$.sha256');

INSERT OR IGNORE INTO projection_checkpoints (name, position, updated_at)
    SELECT 'retained', position, updated_at FROM projection_checkpoints WHERE name = 'clients';
