-- The feed generator's index: what the firehose said, reduced to what feeds need.

-- posts.seq is the index sequence: it only grows (AUTOINCREMENT never reuses a value),
-- so it orders posts by arrival and makes keyset cursors stable while new posts arrive.
CREATE TABLE posts (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    uri          TEXT    NOT NULL UNIQUE,
    cid          TEXT    NOT NULL,
    author       TEXT    NOT NULL,
    rkey         TEXT    NOT NULL,
    text         TEXT    NOT NULL DEFAULT '',
    langs        TEXT    NOT NULL DEFAULT '[]', -- JSON array of language tags
    tags         TEXT    NOT NULL DEFAULT '[]', -- JSON array: facet tags + the post's tags
    created_at   TEXT    NOT NULL,              -- the record's createdAt (client-declared)
    indexed_at   TEXT    NOT NULL,              -- when this index first saw the post
    reply_root   TEXT,
    reply_parent TEXT,
    images       TEXT    NOT NULL DEFAULT '[]', -- JSON array of {cid, mime, alt}
    labels       TEXT    NOT NULL DEFAULT '[]', -- JSON array of self-label values
    hidden       INTEGER NOT NULL DEFAULT 0,    -- 1 while the author is taken down, suspended or deactivated
    like_count   INTEGER NOT NULL DEFAULT 0,
    repost_count INTEGER NOT NULL DEFAULT 0,
    reply_count  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX posts_author_seq ON posts (author, seq);
CREATE INDEX posts_reply_parent ON posts (reply_parent) WHERE reply_parent IS NOT NULL;

-- Records keyed by AT-URI need no author index: at://AUTHOR/... is a prefix of the key, so
-- "everything by AUTHOR" is a range of the primary key (and random-keyed indexes are what
-- makes ingest write many pages).
CREATE TABLE likes (
    uri         TEXT NOT NULL PRIMARY KEY,
    cid         TEXT NOT NULL,
    author      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    subject_cid TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    indexed_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX likes_subject ON likes (subject);

CREATE TABLE reposts (
    uri         TEXT NOT NULL PRIMARY KEY,
    cid         TEXT NOT NULL,
    author      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    subject_cid TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    indexed_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX reposts_subject ON reposts (subject);

CREATE TABLE follows (
    uri        TEXT NOT NULL PRIMARY KEY,
    cid        TEXT NOT NULL,
    author     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    indexed_at TEXT NOT NULL
) WITHOUT ROWID;

-- app.bsky.actor.profile/self; labels carries account self-labels such as "bot".
CREATE TABLE profiles (
    did          TEXT NOT NULL PRIMARY KEY,
    cid          TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    avatar       TEXT NOT NULL DEFAULT '',
    labels       TEXT NOT NULL DEFAULT '[]',
    indexed_at   TEXT NOT NULL
) WITHOUT ROWID;

-- One row per repository seen: hosting status (#account), handle (#identity) and the
-- rev of the last commit applied, which makes replays idempotent.
CREATE TABLE accounts (
    did        TEXT    NOT NULL PRIMARY KEY,
    handle     TEXT    NOT NULL DEFAULT '',
    active     INTEGER NOT NULL DEFAULT 1,
    status     TEXT    NOT NULL DEFAULT 'active',
    rev        TEXT    NOT NULL DEFAULT '',
    updated_at TEXT    NOT NULL
) WITHOUT ROWID;

-- AI-vs-human verdicts (feedgen/classify). A row is created 'unknown' with every post;
-- classified_at stays NULL until a classifier has looked at it. Keyed by the post's seq,
-- so rows are appended in arrival order and feeds can filter by label in seq order.
CREATE TABLE classifications (
    post_seq      INTEGER PRIMARY KEY REFERENCES posts (seq) ON DELETE CASCADE,
    post_uri      TEXT NOT NULL,
    label         TEXT NOT NULL DEFAULT 'unknown',
    confidence    REAL NOT NULL DEFAULT 0,
    evidence      TEXT NOT NULL DEFAULT '[]',
    classified_at TEXT
);
CREATE INDEX classifications_label ON classifications (label, post_seq);
CREATE INDEX classifications_pending ON classifications (post_seq) WHERE classified_at IS NULL;

-- The firehose cursor per source, written in the same transaction as the rows it covers.
CREATE TABLE cursors (
    service    TEXT    NOT NULL PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
) WITHOUT ROWID;

-- Small key/value state (backfill progress).
CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
