-- Fewer random index writes per commit: the rev indexes and the event-time index served
-- only rare scans, which now read the table in key order instead. Obsolete MST and commit
-- blocks are queued here and deleted in batches in the background (see store.CollectBlocks)
-- instead of one random delete per block inside every commit.
DROP INDEX IF EXISTS blocks_by_rev;
DROP INDEX IF EXISTS records_by_rev;
DROP INDEX IF EXISTS events_by_time;
CREATE TABLE obsolete_blocks (
    id  INTEGER PRIMARY KEY,
    did TEXT NOT NULL,
    cid BLOB NOT NULL,
    rev TEXT NOT NULL
);
