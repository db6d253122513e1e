package feedgen_test

// End to end for issue 15: an app.bsky.embed.video post whose MP4 carries provenance
// (IPTC DigitalSourceType in an XMP uuid box) goes through Hearth's PDS; the feed
// generator fetches the video with com.atproto.sync.getBlob under the same size cap
// and timeout as images, reads the ISO BMFF container and classifies the post.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/feedgen"
	"github.com/stretchr/testify/require"
)

func mp4Box(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(n))
	out = append(out, typ...)
	for _, p := range payload {
		out = append(out, p...)
	}
	return out
}

// aiMP4 is a minimal MP4: ftyp, an Adobe XMP uuid box declaring
// trainedAlgorithmicMedia, and an mdat.
func aiMP4() []byte {
	xmpUUID := []byte{0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC}
	xmp := `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">` +
		`<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" ` +
		`Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/></rdf:RDF></x:xmpmeta>`
	out := mp4Box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41"))
	out = append(out, mp4Box("uuid", xmpUUID, []byte(xmp))...)
	return append(out, mp4Box("mdat", bytes.Repeat([]byte{0}, 256))...)
}

func (h *hearth) uploadBytes(a acct, data []byte, mime string) map[string]any {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.pdsURL+"/xrpc/com.atproto.repo.uploadBlob", bytes.NewReader(data))
	require.NoError(h.t, err)
	req.Header.Set("Content-Type", mime)
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := h.client.Do(req)
	require.NoError(h.t, err)
	defer res.Body.Close()
	require.Equal(h.t, http.StatusOK, res.StatusCode)
	var out struct {
		Blob map[string]any `json:"blob"`
	}
	require.NoError(h.t, json.NewDecoder(res.Body).Decode(&out))
	return out.Blob
}

func TestVideoProvenanceEndToEnd(t *testing.T) {
	h := startPDS(t)
	feed := startFeedWith(t, h, t.TempDir()+"/feedgen.sqlite", func(c *feedgen.Config) {
		c.Classify.PollInterval = 200 * time.Millisecond
	})
	defer feed.stop(t)
	ctx := context.Background()
	alice := h.account("alice")

	blob := h.uploadBytes(alice, aiMP4(), "video/mp4")
	uri, cid := h.create(alice, "app.bsky.feed.post", map[string]any{"text": "a clip",
		"embed": map[string]any{"$type": "app.bsky.embed.video", "video": blob, "alt": "a clip"}})
	plain, _ := h.create(alice, "app.bsky.feed.post", map[string]any{"text": "stripped clip",
		"embed": map[string]any{"$type": "app.bsky.embed.video", "video": h.uploadBytes(alice, mp4Box("ftyp", []byte("isom\x00\x00\x02\x00isom")), "video/mp4")}})

	waitFor(t, "both video posts classified", func() bool {
		for _, u := range []string{uri, plain} {
			c, err := feed.svc.Index().Classification(ctx, u)
			if err != nil || !c.Classified {
				return false
			}
		}
		return true
	})
	require.EqualValues(t, 2, feed.svc.BlobsFetched(), "each video fetched once with getBlob")

	st, ex := explain(t, feed, uri)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, cid, ex.CID)
	require.Equal(t, "ai_generated", ex.Label, "%+v", ex)
	require.NotEmpty(t, ex.Evidence)
	require.Equal(t, "xmp.digitalSourceType", ex.Evidence[0].Signal)
	require.True(t, strings.Contains(ex.Evidence[0].Locator, "bmff:uuid[XMP]"), ex.Evidence[0].Locator)

	st, ex = explain(t, feed, plain)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "unknown", ex.Label, "%+v", ex)
}
