-- The label log: every label this labeler ever emitted, in emission order. seq is the
-- subscribeLabels sequence number and the queryLabels cursor.
CREATE TABLE labels (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uri TEXT NOT NULL,
    cid TEXT,                       -- NULL: not bound to one version of the subject
    val TEXT NOT NULL,
    neg INTEGER NOT NULL DEFAULT 0, -- 1: negation of an earlier label
    cts TEXT NOT NULL,
    exp TEXT,                       -- NULL: never expires
    sig BLOB NOT NULL,
    src TEXT NOT NULL
);

-- The latest label per (src, uri, val): what Apply diffs against. neg mirrors the
-- label's neg so the current set is read without touching the log.
CREATE TABLE label_state (
    src TEXT NOT NULL,
    uri TEXT NOT NULL,
    val TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES labels (seq),
    neg INTEGER NOT NULL,
    PRIMARY KEY (src, uri, val)
) WITHOUT ROWID;
CREATE INDEX label_state_uri ON label_state (uri, seq);
CREATE UNIQUE INDEX label_state_seq ON label_state (seq);

-- current_labels: the labels in force (latest per src/uri/val and not a negation).
CREATE VIEW current_labels AS
    SELECT l.seq, l.uri, l.cid, l.val, l.neg, l.cts, l.exp, l.sig, l.src
    FROM label_state s JOIN labels l ON l.seq = s.seq
    WHERE s.neg = 0;

-- The labeler's signing key (secp256k1), generated on first open.
CREATE TABLE signing_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    k256 BLOB NOT NULL,
    created_at TEXT NOT NULL
);
