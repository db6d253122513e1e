package labeler_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/hearth-social/hearth/feedgen/labeler"
	"github.com/hearth-social/hearth/lexicons"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePDS answers createSession and putRecord, and keeps the last putRecord body.
type fakePDS struct {
	mu   sync.Mutex
	puts []map[string]json.RawMessage
}

func (f *fakePDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	if r.Method != http.MethodPost {
		writeJSON(http.StatusMethodNotAllowed, map[string]string{"error": "InvalidRequest"})
		return
	}
	switch r.URL.Path {
	case "/xrpc/com.atproto.server.createSession":
		var in struct{ Identifier, Password string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Identifier != "labels.example.com" || in.Password != "app-pass" {
			writeJSON(http.StatusUnauthorized, map[string]string{"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
			return
		}
		writeJSON(http.StatusOK, map[string]string{"accessJwt": "access-token", "refreshJwt": "refresh", "did": "did:plc:labeler", "handle": in.Identifier})
	case "/xrpc/com.atproto.repo.putRecord":
		if r.Header.Get("Authorization") != "Bearer access-token" {
			writeJSON(http.StatusUnauthorized, map[string]string{"error": "AuthenticationRequired"})
			return
		}
		var in map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeJSON(http.StatusBadRequest, map[string]string{"error": "InvalidRequest", "message": err.Error()})
			return
		}
		f.mu.Lock()
		f.puts = append(f.puts, in)
		f.mu.Unlock()
		writeJSON(http.StatusOK, map[string]string{"uri": "at://did:plc:labeler/app.bsky.labeler.service/self", "cid": cid1})
	default:
		writeJSON(http.StatusNotImplemented, map[string]string{"error": "MethodNotImplemented"})
	}
}

func TestPublish(t *testing.T) {
	pds := &fakePDS{}
	srv := httptest.NewServer(pds)
	t.Cleanup(srv.Close)
	cat, err := lexicons.NewCatalog().Load()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("writes a valid declaration", func(t *testing.T) {
		res, err := labeler.Publish(ctx, labeler.PublishOptions{PDS: srv.URL + "/", Handle: "labels.example.com", Password: "app-pass"})
		require.NoError(t, err)
		assert.Equal(t, "did:plc:labeler", res.DID)
		assert.Equal(t, "at://did:plc:labeler/app.bsky.labeler.service/self", res.URI)

		require.Len(t, pds.puts, 1)
		put := pds.puts[0]
		var repo, coll, rkey string
		require.NoError(t, json.Unmarshal(put["repo"], &repo))
		require.NoError(t, json.Unmarshal(put["collection"], &coll))
		require.NoError(t, json.Unmarshal(put["rkey"], &rkey))
		assert.Equal(t, []string{"did:plc:labeler", "app.bsky.labeler.service", "self"}, []string{repo, coll, rkey})

		d, err := atdata.UnmarshalJSON(put["record"])
		require.NoError(t, err)
		require.NoError(t, lexicon.ValidateRecord(cat, d, "app.bsky.labeler.service", 0))

		var rec struct {
			Type      string `json:"$type"`
			CreatedAt string `json:"createdAt"`
			Policies  struct {
				LabelValues []string `json:"labelValues"`
				Defs        []struct {
					Identifier     string `json:"identifier"`
					Severity       string `json:"severity"`
					Blurs          string `json:"blurs"`
					DefaultSetting string `json:"defaultSetting"`
					AdultOnly      *bool  `json:"adultOnly"`
					Locales        []struct{ Lang, Name, Description string }
				} `json:"labelValueDefinitions"`
			} `json:"policies"`
		}
		require.NoError(t, json.Unmarshal(put["record"], &rec))
		assert.Equal(t, "app.bsky.labeler.service", rec.Type)
		_, err = time.Parse(time.RFC3339, rec.CreatedAt)
		assert.NoError(t, err)
		assert.Equal(t, []string{"ai-generated", "ai-assisted"}, rec.Policies.LabelValues)
		require.Len(t, rec.Policies.Defs, 2)
		def := rec.Policies.Defs[0]
		assert.Equal(t, "ai-generated", def.Identifier)
		assert.Equal(t, "inform", def.Severity)
		assert.Equal(t, "none", def.Blurs)
		assert.Equal(t, "warn", def.DefaultSetting)
		require.NotNil(t, def.AdultOnly)
		assert.False(t, *def.AdultOnly)
		require.Len(t, def.Locales, 1)
		assert.Equal(t, "en", def.Locales[0].Lang)
		assert.Equal(t, "AI generated", def.Locales[0].Name)
		assert.Contains(t, def.Locales[0].Description, "evidence")
		assert.Equal(t, "ai-assisted", rec.Policies.Defs[1].Identifier)
	})
	t.Run("one value", func(t *testing.T) {
		_, err := labeler.Publish(ctx, labeler.PublishOptions{PDS: srv.URL, Handle: "labels.example.com", Password: "app-pass", Values: []string{"ai-generated"}})
		require.NoError(t, err)
		var rec struct {
			Policies struct {
				LabelValues []string `json:"labelValues"`
			} `json:"policies"`
		}
		require.NoError(t, json.Unmarshal(pds.puts[len(pds.puts)-1]["record"], &rec))
		assert.Equal(t, []string{"ai-generated"}, rec.Policies.LabelValues)
	})
	t.Run("unknown value", func(t *testing.T) {
		_, err := labeler.Publish(ctx, labeler.PublishOptions{PDS: srv.URL, Handle: "labels.example.com", Password: "app-pass", Values: []string{"spam"}})
		assert.ErrorContains(t, err, `"spam" has no definition`)
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := labeler.Publish(ctx, labeler.PublishOptions{PDS: srv.URL, Handle: "labels.example.com", Password: "nope"})
		assert.ErrorContains(t, err, "AuthenticationRequired")
	})
	t.Run("bad PDS URL", func(t *testing.T) {
		_, err := labeler.Publish(ctx, labeler.PublishOptions{PDS: "ftp://x", Handle: "h", Password: "p"})
		assert.Error(t, err)
	})
}
