-- What requesters told the feed generator through app.bsky.feed.sendInteractions
-- ("see less/more like this", seen, clicked): the ranked feeds leave out, for that
-- requester, authors they asked to see less of.
CREATE TABLE interactions (
    viewer       TEXT NOT NULL,
    item         TEXT NOT NULL,
    author       TEXT NOT NULL,
    event        TEXT NOT NULL,
    feed_context TEXT NOT NULL DEFAULT '',
    req_id       TEXT NOT NULL DEFAULT '',
    at           TEXT NOT NULL
);
CREATE INDEX interactions_by_viewer ON interactions (viewer, event, author);
