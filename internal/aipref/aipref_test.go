package aipref

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func rec(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &m))
	return m
}

func TestEffective(t *testing.T) {
	self := `{"$type":"community.lexicon.preference.ai","scope":{"$type":"community.lexicon.preference.ai#globalScope"},
		"preferences":{"training":{"allow":false},"syntheticContent":{"allow":false},"inference":{"allow":true}}}`
	posts := `{"scope":{"$type":"community.lexicon.preference.ai#collectionScope","collection":"app.bsky.feed.post"},
		"preferences":{"training":{"allow":true}}}`
	entity := `{"scope":{"$type":"community.lexicon.preference.ai#entityScope","entity":"did:web:lab.example"},
		"preferences":{"training":{"allow":true},"syntheticContent":{"allow":true}}}`
	intents := `{"syntheticContentGeneration":{"allow":true},"bulkDataset":{"allow":false}}`
	type in struct{ coll, rkey, js string }
	for _, tc := range []struct {
		name  string
		recs  []in
		read  string
		want  string
		views []string
	}{
		{"nothing", nil, "", "", nil},
		{"default", []in{{NSIDPreference, "self", self}}, "app.bsky.feed.post", "train-ai=n, train-genai=n", nil},
		{"override for its collection", []in{{NSIDPreference, "self", self}, {NSIDPreference, "3lbc2", posts}}, "app.bsky.feed.post", "train-ai=y, train-genai=n", []string{"app.bsky.feed.post"}},
		{"override not for others", []in{{NSIDPreference, "self", self}, {NSIDPreference, "3lbc2", posts}}, "app.bsky.feed.like", "train-ai=n, train-genai=n", []string{"app.bsky.feed.post"}},
		{"override not for the whole repo", []in{{NSIDPreference, "self", self}, {NSIDPreference, "3lbc2", posts}}, "", "train-ai=n, train-genai=n", []string{"app.bsky.feed.post"}},
		{"entity scope changes nothing", []in{{NSIDPreference, "self", self}, {NSIDPreference, "3lbc3", entity}}, "", "train-ai=n, train-genai=n", nil},
		{"user intents alone", []in{{NSIDUserIntents, "self", intents}}, "", "train-genai=y", nil},
		{"community record wins over user intents", []in{{NSIDUserIntents, "self", intents}, {NSIDPreference, "self", self}}, "", "train-ai=n, train-genai=n", nil},
		{"user intents not at self", []in{{NSIDUserIntents, "other", intents}}, "", "", nil},
		{"override alone", []in{{NSIDPreference, "3lbc2", posts}}, "app.bsky.feed.post", "train-ai=y", []string{"app.bsky.feed.post"}},
		{"wrong shapes declare nothing", []in{{NSIDPreference, "self", `{"preferences":{"training":{"allow":"no"}},"scope":7}`}, {NSIDPreference, "3x", `{"scope":{"$type":"x#unknownScope"}}`}}, "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var decls []Declaration
			for _, r := range tc.recs {
				if d, ok := Parse(r.coll, r.rkey, rec(t, r.js)); ok {
					decls = append(decls, d)
				}
			}
			require.Equal(t, tc.want, Effective(decls, tc.read).ContentUsage())
			require.Equal(t, tc.views, Overridden(decls))
		})
	}
}

func TestParseUsageExpr(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"train-ai=n", "train-ai=n", ""},
		{" train-ai = n ,train-genai=y", "train-ai=n, train-genai=y", ""},
		{"train-ai=maybe", "", "want term=y or term=n"},
		{"train-ai", "", "want term=y or term=n"},
		{"", "", "want term=y or term=n"},
		{"Train-AI=n", "", "not a vocabulary term"},
		{"train-ai=n, train-ai=y", "", "given twice"},
	} {
		got, err := ParseUsageExpr(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got)
	}
}

// FuzzParseUsageExpr: any input is refused or normalised to a form that parses to itself.
func FuzzParseUsageExpr(f *testing.F) {
	for _, s := range []string{"train-ai=n", "train-ai=n, train-genai=y", "a=y,b=n", "=", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseUsageExpr(s)
		if err != nil {
			return
		}
		again, err := ParseUsageExpr(got)
		if err != nil || again != got || strings.ContainsAny(got, "\r\n") {
			t.Fatalf("%q -> %q -> %q, %v", s, got, again, err)
		}
	})
}
