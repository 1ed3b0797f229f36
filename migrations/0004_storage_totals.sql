-- Current storage figures, kept by the stats projection so that /api/status (sent every second on the live feed)
-- does not aggregate the files table. Computed here once for databases that already hold files.
ALTER TABLE stats_totals ADD COLUMN files INTEGER NOT NULL DEFAULT 0;        -- files stored now
ALTER TABLE stats_totals ADD COLUMN file_bytes INTEGER NOT NULL DEFAULT 0;   -- their sizes, added up
ALTER TABLE stats_totals ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0; -- bytes on disk after deduplication

UPDATE stats_totals SET
    files = (SELECT count(*) FROM files),
    file_bytes = (SELECT coalesce(sum(size), 0) FROM files),
    stored_bytes = (SELECT coalesce(sum(size), 0) FROM (SELECT max(size) AS size FROM files GROUP BY checksum))
WHERE id = 1;
