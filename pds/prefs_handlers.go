package pds

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
	"github.com/hearth-social/hearth/pds/store"
)

// maxPreferencesBytes caps a putPreferences body, and so what one account stores.
const maxPreferencesBytes = 256 << 10

// maxPreferences caps the number of preference items of one account.
const maxPreferences = 1000

// prefsNamespace is the only namespace app.bsky.actor.putPreferences may write, as the
// reference PDS enforces. Unknown types inside it are accepted (clients add new ones).
const prefsNamespace = "app.bsky"

// personalDetailsPref holds personal data (birth date): app-password sessions can
// neither read nor write it, as the reference PDS does.
const personalDetailsPref = "app.bsky.actor.defs#personalDetailsPref"

// prefType returns the $type of one preference item; ok is false unless the item is a
// JSON object with a non-empty string $type.
func prefType(item json.RawMessage) (string, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(item, &obj); err != nil || obj == nil {
		return "", false
	}
	var t string
	if err := json.Unmarshal(obj["$type"], &t); err != nil || t == "" {
		return "", false
	}
	return t, true
}

func inPrefsNamespace(typ string) bool {
	return typ == prefsNamespace || strings.HasPrefix(typ, prefsNamespace+".")
}

// prefVisible reports whether a session with scope may read or write a preference type.
func prefVisible(scope, typ string) bool {
	return scope == auth.ScopeAccess || typ != personalDetailsPref
}

func (s *Server) handleGetPreferences(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if c.DID == "" {
		return xrpc.InvalidRequest("getPreferences needs a user session")
	}
	raw, err := s.store.Preferences(r.Context(), c.DID)
	if err != nil {
		return err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return err
	}
	out := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		if t, _ := prefType(it); prefVisible(c.Scope, t) {
			out = append(out, it)
		}
	}
	xrpc.WriteJSON(w, http.StatusOK, map[string]any{"preferences": out})
	return nil
}

func (s *Server) handlePutPreferences(w http.ResponseWriter, r *http.Request) error {
	c := callerFrom(r.Context())
	if c.DID == "" {
		return xrpc.InvalidRequest("putPreferences needs a user session")
	}
	var in struct {
		Preferences []json.RawMessage `json:"preferences"`
	}
	if err := xrpc.DecodeJSON(w, r, maxPreferencesBytes, &in); err != nil {
		return err
	}
	if in.Preferences == nil {
		return xrpc.InvalidRequest("preferences is required (an array)")
	}
	if len(in.Preferences) > maxPreferences {
		return xrpc.InvalidRequest("too many preferences (at most %d)", maxPreferences)
	}
	items := make([]json.RawMessage, 0, len(in.Preferences))
	for i, it := range in.Preferences {
		t, ok := prefType(it)
		if !ok {
			return xrpc.InvalidRequest("preference %d is not an object with a $type", i)
		}
		if !inPrefsNamespace(t) {
			return xrpc.InvalidRequest("preference type %q is not in the %s namespace", t, prefsNamespace)
		}
		if !prefVisible(c.Scope, t) {
			return xrpc.InvalidRequest("app passwords cannot set preference %s", t)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, it); err != nil {
			return xrpc.InvalidRequest("preference %d: %v", i, err)
		}
		items = append(items, buf.Bytes())
	}
	err := s.store.Write(r.Context(), func(tx *store.Tx) error {
		all := items
		if c.Scope != auth.ScopeAccess {
			// An app password replaces what it can see and keeps the rest.
			raw, err := tx.Preferences(c.DID)
			if err != nil {
				return err
			}
			var old []json.RawMessage
			if err := json.Unmarshal(raw, &old); err != nil {
				return err
			}
			all = nil
			for _, it := range old {
				if t, _ := prefType(it); !prefVisible(c.Scope, t) {
					all = append(all, it)
				}
			}
			all = append(all, items...)
		}
		if all == nil {
			all = []json.RawMessage{}
		}
		b, err := json.Marshal(all)
		if err != nil {
			return err
		}
		return tx.PutPreferences(c.DID, b)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
