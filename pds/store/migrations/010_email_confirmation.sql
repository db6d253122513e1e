-- Email confirmation and the email second factor: when the account's current address
-- was confirmed with a mailed token (NULL: not confirmed; changing the address clears
-- it), and whether a password login also needs a code mailed to that address. A
-- password reset finds its account by the mailed token alone, hence the index; when the
-- password last changed, so access tokens issued before are refused after a restart too.
ALTER TABLE accounts ADD COLUMN email_confirmed_ms INTEGER;
ALTER TABLE accounts ADD COLUMN email_auth_factor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN password_changed_ms INTEGER;
CREATE INDEX email_tokens_by_hash ON email_tokens (purpose, token_hash);
