-- Feed pages read only (seq, author, rkey) of the visible posts; the URI is
-- at://AUTHOR/app.bsky.feed.post/RKEY. Covering indexes let a page be read from a few
-- narrow index pages instead of one wide table row (text, images, labels) per post
-- looked at: the recent feed walks posts_visible_seq down from its cursor, the
-- following feed either the same index filtered by the follow set or, for few follows,
-- posts_author_seq one range per followed author.
DROP INDEX posts_author_seq;
CREATE INDEX posts_author_seq ON posts (author, seq, hidden, rkey);
CREATE INDEX posts_visible_seq ON posts (hidden, seq, author, rkey);
