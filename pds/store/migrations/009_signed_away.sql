-- When this PDS signed a PLC operation pointing an account's DID at another PDS
-- (signPlcOperation, the "leave" step of a migration): until the DID document is seen to
-- name the other PDS (then the account is deactivated here) or a day has passed.
ALTER TABLE accounts ADD COLUMN signed_away_ms INTEGER;
