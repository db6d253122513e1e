-- Classification worker state (feedgen/worker.go) and the labeler outbox.

-- What a verdict needs beyond label/confidence/evidence. The worker writes all of them at
-- once; a reset (the post was edited: classified_at back to NULL) clears them too.
ALTER TABLE classifications ADD COLUMN post_cid   TEXT    NOT NULL DEFAULT '';   -- the post version classified
ALTER TABLE classifications ADD COLUMN ai_score   REAL    NOT NULL DEFAULT 0.5;
ALTER TABLE classifications ADD COLUMN ai_tier    INTEGER NOT NULL DEFAULT 3;    -- lowest tier of positive AI evidence; 3 = none
ALTER TABLE classifications ADD COLUMN signals    TEXT    NOT NULL DEFAULT '';   -- top evidence signals, comma separated (feedContext)
ALTER TABLE classifications ADD COLUMN label_vals TEXT    NOT NULL DEFAULT '[]'; -- labeler values the verdict asks for
ALTER TABLE classifications ADD COLUMN version    TEXT    NOT NULL DEFAULT '';

CREATE TRIGGER classifications_reset AFTER UPDATE OF classified_at ON classifications
WHEN new.classified_at IS NULL AND old.classified_at IS NOT NULL
BEGIN
    UPDATE classifications SET post_cid = '', ai_score = 0.5, ai_tier = 3, signals = '', label_vals = '[]', version = ''
    WHERE post_seq = new.post_seq;
END;

-- Evidence found in one blob, keyed by its CID: blobs are content-addressed, so a blob is
-- fetched and parsed once however many posts embed it. Failed fetches are not cached.
CREATE TABLE media_evidence (
    cid        TEXT    NOT NULL PRIMARY KEY,
    size       INTEGER NOT NULL,
    evidence   TEXT    NOT NULL,              -- JSON array of classify.Evidence
    version    TEXT    NOT NULL,              -- classify.Version that produced it
    fetched_at TEXT    NOT NULL
) WITHOUT ROWID;

-- Posts the labeler currently asserts labels on (what Apply was last called with).
CREATE TABLE labeled_posts (
    uri  TEXT NOT NULL PRIMARY KEY,
    cid  TEXT NOT NULL,
    vals TEXT NOT NULL                        -- JSON array, never empty
) WITHOUT ROWID;

-- Subjects whose labels must be recomputed and re-applied. Written in the transaction that
-- changes a verdict, and by the triggers below when a post goes away or its visibility
-- changes; drained by the worker. Apply is idempotent, so a crash only repeats work.
-- gen counts re-enqueues, so a drain that raced with a newer change leaves the row in place.
CREATE TABLE label_outbox (
    uri TEXT    NOT NULL PRIMARY KEY,
    gen INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- A deleted post (or every post of a deleted account) loses its labels.
CREATE TRIGGER posts_delete_labels AFTER DELETE ON posts
WHEN EXISTS (SELECT 1 FROM labeled_posts WHERE uri = old.uri)
BEGIN
    INSERT INTO label_outbox (uri) VALUES (old.uri) ON CONFLICT (uri) DO UPDATE SET gen = gen + 1;
END;

-- A taken-down or deactivated account's posts lose their labels, and get them back when
-- the account returns.
CREATE TRIGGER posts_hidden_labels AFTER UPDATE OF hidden ON posts
WHEN old.hidden != new.hidden AND (EXISTS (SELECT 1 FROM labeled_posts WHERE uri = new.uri)
    OR EXISTS (SELECT 1 FROM classifications WHERE post_seq = new.seq AND label_vals != '[]'))
BEGIN
    INSERT INTO label_outbox (uri) VALUES (new.uri) ON CONFLICT (uri) DO UPDATE SET gen = gen + 1;
END;
