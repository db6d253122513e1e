-- OAuth (pds/oauth): pushed authorization requests, the sessions (tokens) they turn
-- into, refresh tokens already rotated away (a second use revokes the session), and the
-- browser sign-ins of the authorization and account pages. Codes, refresh tokens and
-- browser session ids are stored as SHA-256 hashes only.
CREATE TABLE oauth_requests (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    params          BLOB NOT NULL,
    dpop_jkt        TEXT NOT NULL,
    client_auth     TEXT NOT NULL,
    expires_ms      INTEGER NOT NULL,
    did             TEXT,
    device_id       TEXT,
    code_hash       BLOB UNIQUE,
    code_expires_ms INTEGER,
    used            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth_requests_by_expiry ON oauth_requests (expires_ms);

CREATE TABLE oauth_tokens (
    id           TEXT PRIMARY KEY,
    did          TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    client_name  TEXT NOT NULL DEFAULT '',
    client_auth  TEXT NOT NULL,
    scope        TEXT NOT NULL,
    dpop_jkt     TEXT NOT NULL,
    refresh_hash BLOB NOT NULL UNIQUE,
    code_hash    BLOB,
    device_id    TEXT,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
);
CREATE INDEX oauth_tokens_by_did ON oauth_tokens (did);
CREATE INDEX oauth_tokens_by_code ON oauth_tokens (code_hash);

CREATE TABLE oauth_used_refresh (
    hash       BLOB PRIMARY KEY,
    token_id   TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX oauth_used_refresh_by_token ON oauth_used_refresh (token_id);

CREATE TABLE web_sessions (
    id_hash      BLOB PRIMARY KEY,
    device_id    TEXT NOT NULL,
    did          TEXT NOT NULL,
    user_agent   TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT '',
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_by_did ON web_sessions (did);
