-- Single-use tokens sent by mail (PLC operation, account deletion, email confirmation):
-- one live token per account and purpose, stored as its SHA-256 (the mail holds the
-- token itself), valid until expires_ms.
CREATE TABLE email_tokens (
    did        TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    token_hash BLOB NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (did, purpose)
) WITHOUT ROWID;
