-- Uploaded blobs and which records reference them. A blob with no record_blobs row is
-- garbage once its grace period has passed.
CREATE TABLE blobs (
    did        TEXT NOT NULL,
    cid        BLOB NOT NULL,
    mime       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (did, cid)
) WITHOUT ROWID;
CREATE INDEX blobs_by_time ON blobs (created_ms);

CREATE TABLE record_blobs (
    did  TEXT NOT NULL,
    path TEXT NOT NULL,
    cid  BLOB NOT NULL,
    rev  TEXT NOT NULL,
    PRIMARY KEY (did, path, cid)
) WITHOUT ROWID;
CREATE INDEX record_blobs_by_cid ON record_blobs (did, cid);
