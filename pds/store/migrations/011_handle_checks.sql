-- Handles on the account's own domain (outside the PDS's handle domains) are verified
-- again periodically: when the handle was last checked, whether the last answer said it no
-- longer points at the account (it is then shown to the network as handle.invalid), and
-- how many checks in a row got no answer at all (DNS or HTTP failures).
CREATE TABLE handle_checks (
    did        TEXT PRIMARY KEY REFERENCES accounts(did) ON DELETE CASCADE,
    handle     TEXT NOT NULL,
    checked_ms INTEGER NOT NULL,
    invalid    INTEGER NOT NULL DEFAULT 0,
    failures   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX handle_checks_due ON handle_checks (checked_ms);
