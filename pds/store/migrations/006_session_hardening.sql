-- App passwords are 80 random bits, so a keyed hash (HMAC with a server secret) finds one
-- in a single lookup instead of one scrypt per stored password on every login; rows made
-- before this migration have no lookup and are still checked with scrypt.
-- Refresh tokens remember the scope they grant (a privileged app password stays
-- privileged across refreshes) and the token that replaced them, so two concurrent
-- refreshes of one token both succeed within a short grace period.
ALTER TABLE app_passwords ADD COLUMN lookup BLOB;
ALTER TABLE refresh_tokens ADD COLUMN scope TEXT;
ALTER TABLE refresh_tokens ADD COLUMN next_id TEXT;
CREATE INDEX refresh_tokens_by_next ON refresh_tokens (next_id);
