-- The MST is a deterministic function of the records' (path, CID) pairs, so it is
-- rebuilt from the records table when an account's repo is first used and kept in memory
-- (its root is checked against the signed head). Only the head commit block is stored,
-- beside the head. This removes the random-key block inserts and deletes that dominated
-- the cost of every commit.
ALTER TABLE repos ADD COLUMN commit_data BLOB;
UPDATE repos SET commit_data = (SELECT data FROM blocks b WHERE b.did = repos.did AND b.cid = repos.commit_cid);
DROP TABLE blocks;
DROP TABLE obsolete_blocks;
