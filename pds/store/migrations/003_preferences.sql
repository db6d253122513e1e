-- Private per-account preferences (app.bsky.actor.getPreferences / putPreferences).
-- prefs is the JSON array of preference objects exactly as the client sent them.
CREATE TABLE preferences (
    did        TEXT PRIMARY KEY,
    prefs      BLOB NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
