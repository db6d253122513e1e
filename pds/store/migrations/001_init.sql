-- Accounts, repositories, blocks, records, the firehose event log, sessions and invites.
CREATE TABLE accounts (
    did           TEXT PRIMARY KEY,
    handle        TEXT NOT NULL UNIQUE,
    email         TEXT UNIQUE,
    password_hash TEXT NOT NULL,
    signing_key   BLOB NOT NULL,
    status        TEXT NOT NULL DEFAULT 'active',
    created_at    TEXT NOT NULL
);

-- The current head of each repository.
CREATE TABLE repos (
    did        TEXT PRIMARY KEY REFERENCES accounts(did) ON DELETE CASCADE,
    commit_cid BLOB NOT NULL,
    rev        TEXT NOT NULL,
    data_cid   BLOB NOT NULL
) WITHOUT ROWID;

-- Commit and MST node blocks (record blocks live in records.value).
CREATE TABLE blocks (
    did  TEXT NOT NULL,
    cid  BLOB NOT NULL,
    rev  TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (did, cid)
) WITHOUT ROWID;
CREATE INDEX blocks_by_rev ON blocks (did, rev);

-- Current records: the index behind getRecord/listRecords and the record blocks.
CREATE TABLE records (
    did        TEXT NOT NULL,
    collection TEXT NOT NULL,
    rkey       TEXT NOT NULL,
    cid        BLOB NOT NULL,
    rev        TEXT NOT NULL,
    value      BLOB NOT NULL,
    PRIMARY KEY (did, collection, rkey)
) WITHOUT ROWID;
CREATE INDEX records_by_cid ON records (did, cid);
CREATE INDEX records_by_rev ON records (did, rev);

-- The firehose log. AUTOINCREMENT: a seq is never reused, even after retention deletes
-- the newest rows.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    did        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    frame      BLOB NOT NULL
);
CREATE INDEX events_by_time ON events (created_ms);

CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY,
    did          TEXT NOT NULL REFERENCES accounts(did) ON DELETE CASCADE,
    app_password TEXT,
    expires_ms   INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_by_did ON refresh_tokens (did);

CREATE TABLE app_passwords (
    did           TEXT NOT NULL REFERENCES accounts(did) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    privileged    INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (did, name)
) WITHOUT ROWID;

CREATE TABLE invite_codes (
    code        TEXT PRIMARY KEY,
    for_account TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    available   INTEGER NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE INDEX invite_codes_by_account ON invite_codes (for_account);

CREATE TABLE invite_code_uses (
    code    TEXT NOT NULL REFERENCES invite_codes(code),
    used_by TEXT NOT NULL,
    used_at TEXT NOT NULL,
    PRIMARY KEY (code, used_by)
) WITHOUT ROWID;

-- Server-wide secrets (JWT key, PLC rotation key), created on first start.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
