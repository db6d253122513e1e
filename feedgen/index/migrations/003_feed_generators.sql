-- app.bsky.feed.generator records seen on the firehose: a feed is served when its
-- record names this service's DID and its publisher is allowed (see feedgen.Config).
CREATE TABLE feed_generators (
    uri         TEXT PRIMARY KEY,
    publisher   TEXT NOT NULL,
    rkey        TEXT NOT NULL,
    service_did TEXT NOT NULL,
    indexed_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX feed_generators_by_service ON feed_generators (service_did);
