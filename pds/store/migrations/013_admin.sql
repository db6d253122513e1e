-- The admin API (com.atproto.admin.*). Records and blobs an administrator took down
-- (updateSubjectStatus with a strongRef or repoBlobRef subject): they stay stored, so a
-- takedown can be lifted, but no read path serves them meanwhile. A record is taken down
-- by its path (collection/rkey), whatever its content becomes, as in the reference PDS;
-- a blob by its CID within the account.
CREATE TABLE takedowns (
    did        TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('record', 'blob')),
    subject    TEXT NOT NULL,
    ref        TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (did, kind, subject)
) WITHOUT ROWID;

-- Every takedown and restore of an account, record or blob: who, when, why. Kept after
-- the subject (or its account) is gone: it is the operator's record of what was done.
CREATE TABLE moderation_log (
    id         INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('account', 'record', 'blob')),
    did        TEXT NOT NULL,
    subject    TEXT NOT NULL,
    cid        TEXT NOT NULL DEFAULT '',
    applied    INTEGER NOT NULL,
    ref        TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX moderation_log_by_did ON moderation_log (did, id);

-- disableAccountInvites: the account may be given no new invite codes (its existing
-- codes keep working), with the administrator's note.
ALTER TABLE accounts ADD COLUMN invites_disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN invite_note TEXT;
