package main

import (
	"bytes"
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/testnet"
	"github.com/hearth-social/hearth/pds"
	"github.com/stretchr/testify/require"
)

// hearth account ai-preferences writes the declaration through the account's own PDS
// (an ordinary commit), and the declaration moves with the account: after a migration
// there and back, both PDSes answer the same Content-Usage for the account's reads.
func TestAccountAIPreferences(t *testing.T) {
	src := testnet.Start(t)
	dst := testnet.Start(t, func(c *pds.Config) { c.PLCURL = src.PLCServer.URL; c.Hostname = "pds-two.test" })
	alice := src.Client.CreateAccount(t, "alice")
	_, _ = src.Client.CreateRecord(t, alice, "app.bsky.feed.post", testnet.Post("mine"))
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := newApp(&out, &errOut).RunContext(ctx, append([]string{"hearth", "account", "ai-preferences", "--pds", src.URL(), "--did", alice.DID, "--password", alice.Password}, args...))
		return out.String(), err
	}
	usage := func(n *testnet.Net, collection string) string {
		t.Helper()
		r := n.Client.Get(t, "com.atproto.repo.listRecords", url.Values{"repo": {alice.DID}, "collection": {collection}}, "")
		testnet.RequireOK(t, r)
		return r.Header.Get("Content-Usage")
	}

	_, err := run("--training", "sometimes")
	require.ErrorContains(t, err, "--training: want allow, deny or unset")
	_, err = run("--collection", "not an nsid", "--training", "deny")
	require.ErrorContains(t, err, "--collection")
	require.Equal(t, "", usage(src, "app.bsky.feed.post"))

	out, err := run("--training", "deny", "--synthetic", "deny", "--inference", "allow")
	require.NoError(t, err)
	require.Contains(t, out, "wrote at://"+alice.DID+"/community.lexicon.preference.ai/self")
	require.Contains(t, out, "Content-Usage: train-ai=n, train-genai=n")
	// Categories not given keep what was declared; unset removes one.
	out, err = run("--synthetic", "unset")
	require.NoError(t, err)
	require.Contains(t, out, "Content-Usage: train-ai=n\n")
	// A collection override, written as a TID-keyed record and updated in place.
	_, err = run("--collection", "app.bsky.feed.post", "--training", "deny")
	require.NoError(t, err)
	out, err = run("--collection", "app.bsky.feed.post", "--training", "allow")
	require.NoError(t, err)
	require.Contains(t, out, "Content-Usage: train-ai=y\n")
	list := src.Client.Get(t, "com.atproto.repo.listRecords", url.Values{"repo": {alice.DID}, "collection": {"community.lexicon.preference.ai"}}, "")
	testnet.RequireOK(t, list)
	require.Len(t, list.JSON["records"], 2, "self and one override")
	require.Equal(t, "train-ai=y", usage(src, "app.bsky.feed.post"))
	require.Equal(t, "train-ai=n", usage(src, "app.bsky.feed.like"))

	// There and back: the records travel in the repo, the headers follow them.
	migrate(t, src, dst.URL(), alice.DID, alice.Password, "alice2.test")
	require.Equal(t, "train-ai=y", usage(dst, "app.bsky.feed.post"))
	require.Equal(t, "train-ai=n", usage(dst, "app.bsky.feed.like"))
	migrate(t, dst, src.URL(), alice.DID, alice.Password, "alice.test")
	require.Equal(t, "train-ai=y", usage(src, "app.bsky.feed.post"))
	require.Equal(t, "train-ai=n", usage(src, "app.bsky.feed.like"))
}
