package feedgen_test

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/labeler"
	"github.com/stretchr/testify/require"
)

// The feed generator reads AI usage declarations from the firehose like any record:
// explainPost shows the author's next to the verdict (default plus the posts override),
// and with the operator's opt-in the labeler labels accounts that deny training, and
// withdraws the label when the declaration goes.
func TestAIDeclarationsFromFirehose(t *testing.T) {
	h := startPDS(t)
	n := startFeedWith(t, h, filepath.Join(t.TempDir(), "feed.sqlite"), func(c *feedgen.Config) { c.Classify.AccountLabels = true })
	alice, bob := h.account("alice"), h.account("bobby")
	labels := subscribeLabels(t, n, labelKey(t, n))
	now := time.Now().UTC().Format(time.RFC3339)
	pref := func(allow bool) map[string]any { return map[string]any{"allow": allow, "updatedAt": now} }
	put := func(a acct, rkey string, scope map[string]any, prefs map[string]any) string {
		out := h.xrpc(http.MethodPost, "com.atproto.repo.putRecord", nil, map[string]any{"repo": a.did, "collection": "community.lexicon.preference.ai", "rkey": rkey,
			"record": map[string]any{"$type": "community.lexicon.preference.ai", "updatedAt": now, "scope": scope, "preferences": prefs}}, a.token)
		return out["uri"].(string)
	}
	selfURI := put(alice, "self", map[string]any{"$type": "community.lexicon.preference.ai#globalScope"},
		map[string]any{"training": pref(false), "syntheticContent": pref(false), "inference": pref(true)})
	overURI := put(alice, "3lbcposts22a2", map[string]any{"$type": "community.lexicon.preference.ai#collectionScope", "collection": "app.bsky.feed.post"},
		map[string]any{"syntheticContent": pref(true)})
	postA, postB := h.post(alice, "a post by someone who said no"), h.post(bob, "a post by someone who said nothing")

	var out feedgen.ExplainOutput
	waitFor(t, "alice's post and declarations indexed", func() bool {
		st, o := explain(t, n, postA)
		out = o
		return st == http.StatusOK && o.AuthorAIPreferences != nil && len(o.AuthorAIPreferences.Records) == 2
	})
	require.Equal(t, &feedgen.ExplainAIPreferences{Training: "deny", Inference: "allow", SyntheticContent: "allow",
		ContentUsage: "train-ai=n, train-genai=y", Records: []string{overURI, selfURI}}, out.AuthorAIPreferences)
	waitFor(t, "bob's post indexed", func() bool { st, _ := explain(t, n, postB); return st == http.StatusOK })
	_, outB := explain(t, n, postB)
	require.Nil(t, outB.AuthorAIPreferences, "nothing declared, nothing shown")

	labels.until(labeler.ValueNoAITraining + " " + alice.did)

	// Training allowed now: the label is withdrawn; then the declarations deleted.
	put(alice, "self", map[string]any{"$type": "community.lexicon.preference.ai#globalScope"}, map[string]any{"training": pref(true)})
	labels.until("-" + labeler.ValueNoAITraining + " " + alice.did)
	h.deleteRecord(alice, selfURI)
	h.deleteRecord(alice, overURI)
	waitFor(t, "declarations gone", func() bool { _, o := explain(t, n, postA); return o.AuthorAIPreferences == nil })
}

// Without the operator's opt-in no account is labelled, though explainPost still shows
// the declaration.
func TestAIDeclarationsNoLabelByDefault(t *testing.T) {
	h := startPDS(t)
	n := startFeed(t, h, filepath.Join(t.TempDir(), "feed.sqlite"))
	alice := h.account("alice")
	now := time.Now().UTC().Format(time.RFC3339)
	h.xrpc(http.MethodPost, "com.atproto.repo.putRecord", nil, map[string]any{"repo": alice.did, "collection": "community.lexicon.preference.ai", "rkey": "self",
		"record": map[string]any{"$type": "community.lexicon.preference.ai", "updatedAt": now, "scope": map[string]any{"$type": "community.lexicon.preference.ai#globalScope"},
			"preferences": map[string]any{"training": map[string]any{"allow": false, "updatedAt": now}}}}, alice.token)
	post := h.post(alice, "no label for me")
	waitFor(t, "declaration indexed", func() bool {
		st, o := explain(t, n, post)
		return st == http.StatusOK && o.AuthorAIPreferences != nil
	})
	// The outbox is drained (the post's own entry and the account's) without a label.
	waitFor(t, "label outbox drained", func() bool {
		tasks, err := n.svc.Index().LabelOutbox(t.Context(), 10)
		require.NoError(t, err)
		return len(tasks) == 0
	})
	cur, err := n.svc.Labeler().Current(t.Context(), alice.did)
	require.NoError(t, err)
	require.Empty(t, cur)
}
