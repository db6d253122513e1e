-- deactivateAccount's deleteAfter: when a deactivated account is to be deleted (NULL:
-- never). Reactivation clears it.
ALTER TABLE accounts ADD COLUMN delete_after_ms INTEGER;
