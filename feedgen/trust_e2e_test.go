package feedgen_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/classify"
	"github.com/stretchr/testify/require"
)

// TestTrustListEndToEnd runs the feed generator with and without a C2PA trust list over
// one index: an image with an intact manifest (c2pa-rs's ES256 test signer) is "unverifiable"
// while no signer is trusted and "valid" once the operator trusts its issuer; the media
// evidence cached for the blob under the first configuration is not reused under the
// second (the blob is fetched again).
func TestTrustListEndToEnd(t *testing.T) {
	h := startPDS(t)
	ctx := context.Background()
	indexPath := filepath.Join(t.TempDir(), "feedgen.sqlite")
	alice := h.account("alice")
	img := filepath.Join("..", "testdata", "provenance", "trustnxt-jpeg-signed.jpg")

	signature := func(feed *feedNode, uri string) string {
		t.Helper()
		waitFor(t, "post classified", func() bool {
			c, err := feed.svc.Index().Classification(ctx, uri)
			return err == nil && c.Classified
		})
		st, ex := explain(t, feed, uri)
		require.Equal(t, http.StatusOK, st)
		for _, e := range ex.Evidence {
			if e.Signal == "c2pa.signature" {
				return e.Excerpt
			}
		}
		t.Fatalf("no c2pa.signature evidence: %+v", ex.Evidence)
		return ""
	}
	fast := func(c *feedgen.Config) { c.Classify.PollInterval = 100 * time.Millisecond }

	untrusted := startFeedWith(t, h, indexPath, fast)
	uri1, _ := h.imagePost(alice, "a photo", h.uploadPath(alice, img))
	require.True(t, strings.HasPrefix(signature(untrusted, uri1), "unverifiable: no C2PA trust list configured"))
	require.EqualValues(t, 1, untrusted.svc.BlobsFetched())
	untrusted.stop(t)

	trust, err := classify.LoadTrustList(filepath.Join("..", "testdata", "c2pa-trust", "c2pa-test-intermediate.pem"))
	require.NoError(t, err)
	trusted := startFeedWith(t, h, indexPath, func(c *feedgen.Config) {
		fast(c)
		c.Classify.Trust = trust
	})
	defer trusted.stop(t)
	uri2, _ := h.imagePost(alice, "the same photo again", h.uploadPath(alice, img))
	got := signature(trusted, uri2)
	require.True(t, strings.HasPrefix(got, "valid"), "got %q", got)
	require.EqualValues(t, 1, trusted.svc.BlobsFetched(), "evidence cached without the trust list is not reused with it")
}
