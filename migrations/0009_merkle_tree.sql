-- The Merkle tree over the log (RFC 6962): one row per complete perfect subtree of 256 leaves or more (those
-- below are hashed on read from the events' own hashes), keyed by level · 2^48 + index,
-- written by the writer in the transaction of the events it covers. A database that already holds events gets
-- its tree built from the log when its writer starts or a replay migrates it (SQL cannot hash), as a replay would.
CREATE TABLE merkle_nodes (
    id   INTEGER PRIMARY KEY,          -- level · 2^48 + index: the nodes of one level are one range of keys
    hash BLOB    NOT NULL              -- 32 bytes: SHA-256(0x01 ‖ left ‖ right)
);
