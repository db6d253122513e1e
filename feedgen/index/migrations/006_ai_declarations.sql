-- AI usage declarations seen on the firehose (community.lexicon.preference.ai and
-- org.user-intents.declaration records, read by internal/aipref): explainPost shows an
-- author's next to the provenance verdict, and the labeler can label accounts that deny
-- training. Each preference is 1 (allow), 0 (deny) or NULL (undeclared). URIs start with
-- at://DID/, so the primary key is the author index.
CREATE TABLE ai_declarations (
    uri        TEXT PRIMARY KEY,
    scope      TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    training   INTEGER,
    inference  INTEGER,
    synthetic  INTEGER,
    embedding  INTEGER,
    indexed_at TEXT NOT NULL
) WITHOUT ROWID;
