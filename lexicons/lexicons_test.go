package lexicons

import (
	"testing"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/stretchr/testify/require"
)

func TestCatalogValidatesPosts(t *testing.T) {
	cat, err := NewCatalog().Load()
	require.NoError(t, err)
	cases := []struct {
		name  string
		json  string
		valid bool
	}{
		{"ok", `{"$type":"app.bsky.feed.post","text":"hi","createdAt":"2026-01-01T00:00:00Z"}`, true},
		{"missing text", `{"$type":"app.bsky.feed.post","createdAt":"2026-01-01T00:00:00Z"}`, false},
		{"bad datetime", `{"$type":"app.bsky.feed.post","text":"x","createdAt":"yesterday"}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := atdata.UnmarshalJSON([]byte(tc.json))
			require.NoError(t, err)
			err = lexicon.ValidateRecord(cat, d, "app.bsky.feed.post", 0)
			if tc.valid {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
	_, err = cat.Resolve("com.atproto.repo.createRecord")
	require.NoError(t, err)
}
