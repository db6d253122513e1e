package pds_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearth-social/hearth/pds"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

// testPNG returns a small, real PNG image.
func testPNG(t *testing.T, seed uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = seed + uint8(i)
	}
	img.Set(0, 0, color.RGBA{R: seed, A: 255})
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// rawCID is the CIDv1 (raw codec, sha-256) of b, as a blob's CID must be.
func rawCID(t *testing.T, b []byte) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum(b, multihash.SHA2_256, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, mh)
}

// upload posts b to uploadBlob and returns the response.
func (e *env) upload(token, contentType string, b []byte) *resp {
	e.t.Helper()
	return e.raw("POST", "com.atproto.repo.uploadBlob", "", b, token, map[string]string{"Content-Type": contentType})
}

// uploadOK uploads b and returns its blob ref.
func (e *env) uploadOK(token string, b []byte) map[string]any {
	e.t.Helper()
	r := e.upload(token, "image/png", b)
	requireOK(e.t, r)
	return r.JSON["blob"].(map[string]any)
}

func blobLink(ref map[string]any) string {
	return ref["ref"].(map[string]any)["$link"].(string)
}

func imagePost(text string, refs ...map[string]any) map[string]any {
	p := post(text)
	var imgs []any
	for _, ref := range refs {
		imgs = append(imgs, map[string]any{"alt": "a picture", "image": ref})
	}
	p["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": imgs}
	return p
}

// createPost commits p for a and returns its rkey.
func (e *env) createPost(a *account, p map[string]any) string {
	e.t.Helper()
	r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "record": p}, a.Access)
	requireOK(e.t, r)
	uri := r.Str("uri")
	return uri[strings.LastIndex(uri, "/")+1:]
}

func (e *env) deletePost(a *account, rkey string) {
	e.t.Helper()
	requireOK(e.t, e.post("com.atproto.repo.deleteRecord", map[string]any{"repo": a.DID, "collection": "app.bsky.feed.post", "rkey": rkey}, a.Access))
}

func (e *env) getBlob(did, c string) *resp {
	e.t.Helper()
	return e.raw("GET", "com.atproto.sync.getBlob", url.Values{"did": {did}, "cid": {c}}.Encode(), nil, "", nil)
}

// blobFiles lists every regular file under the blob store (temp files included).
func (e *env) blobFiles() []string {
	e.t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(e.cfg.DataDir, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, filepath.Base(path))
		}
		return nil
	})
	require.NoError(e.t, err)
	return out
}

func TestBlobUploadGetRoundTrip(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	img := testPNG(t, 1)

	// The client's declared type does not matter for a recognisable image.
	r := e.upload(alice.Access, "application/octet-stream", img)
	requireOK(t, r)
	ref := r.JSON["blob"].(map[string]any)
	require.Equal(t, "blob", ref["$type"])
	require.Equal(t, "image/png", ref["mimeType"])
	require.EqualValues(t, len(img), ref["size"])
	require.Equal(t, rawCID(t, img).String(), blobLink(ref))

	// Committed in a post with an image embed, the blob is served and listed.
	_, revBefore := e.latest(alice.DID)
	e.createPost(alice, imagePost("look", ref))
	_, revAfter := e.latest(alice.DID)
	g := e.getBlob(alice.DID, blobLink(ref))
	require.Equal(t, http.StatusOK, g.Status, "body %s", g.Body)
	require.True(t, bytes.Equal(img, g.Body), "bytes differ")
	require.Equal(t, "image/png", g.Header.Get("Content-Type"))
	require.Equal(t, strconv.Itoa(len(img)), g.Header.Get("Content-Length"))
	require.Equal(t, "default-src 'none'; sandbox", g.Header.Get("Content-Security-Policy"))
	require.Equal(t, "nosniff", g.Header.Get("X-Content-Type-Options"))

	l := e.get("com.atproto.sync.listBlobs", url.Values{"did": {alice.DID}}, "")
	requireOK(t, l)
	require.Equal(t, []any{blobLink(ref)}, l.JSON["cids"])
	l = e.get("com.atproto.sync.listBlobs", url.Values{"did": {alice.DID}, "since": {revBefore}}, "")
	requireOK(t, l)
	require.Equal(t, []any{blobLink(ref)}, l.JSON["cids"])
	l = e.get("com.atproto.sync.listBlobs", url.Values{"did": {alice.DID}, "since": {revAfter}}, "")
	requireOK(t, l)
	require.Empty(t, l.JSON["cids"])
	m := e.get("com.atproto.repo.listMissingBlobs", nil, alice.Access)
	requireOK(t, m)
	require.Empty(t, m.JSON["blobs"])
}

func TestBlobNotFoundAndUnknownRefs(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	bob := e.createAccount("bob")

	unknown := rawCID(t, []byte("never uploaded")).String()
	requireXRPCError(t, e.getBlob(alice.DID, unknown), 400, "BlobNotFound")
	requireXRPCError(t, e.getBlob(alice.DID, "not-a-cid"), 400, "InvalidRequest")

	// An upload no record references yet is not served.
	ref := e.uploadOK(alice.Access, testPNG(t, 2))
	requireXRPCError(t, e.getBlob(alice.DID, blobLink(ref)), 400, "BlobNotFound")

	// A record that references a blob that was never uploaded (or that another account
	// uploaded) is refused with a clear error, and nothing is committed.
	head, _ := e.latest(alice.DID)
	fake := map[string]any{"$type": "blob", "ref": map[string]any{"$link": unknown}, "mimeType": "image/png", "size": 100}
	r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": imagePost("ghost", fake)}, alice.Access)
	requireXRPCError(t, r, 400, "InvalidRequest")
	require.Contains(t, r.Str("message"), unknown)
	require.Contains(t, r.Str("message"), "not uploaded")
	bobRef := e.uploadOK(bob.Access, testPNG(t, 3))
	requireXRPCError(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": imagePost("borrowed", bobRef)}, alice.Access), 400, "InvalidRequest")
	after, _ := e.latest(alice.DID)
	require.Equal(t, head, after, "a refused record must not be committed")
	requireXRPCError(t, e.upload("", "image/png", testPNG(t, 4)), 401, "AuthenticationRequired")
}

func TestBlobTooLarge(t *testing.T) {
	e := newEnv(t, func(c *pds.Config) { c.MaxBlobBytes = 1024 })
	alice := e.createAccount("alice")
	r := e.get("com.atproto.server.describeServer", nil, "")
	requireOK(t, r)
	require.EqualValues(t, 1024, r.JSON["blobUploadLimit"])

	big := make([]byte, 4000)
	rand.Read(big)
	// Declared too large, and too large while streaming (no Content-Length).
	requireXRPCError(t, e.upload(alice.Access, "application/octet-stream", big), 413, "BlobTooLarge")
	req, err := http.NewRequest("POST", e.http.URL+"/xrpc/com.atproto.repo.uploadBlob", io.MultiReader(bytes.NewReader(big)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+alice.Access)
	require.EqualValues(t, 0, req.ContentLength)
	res, err := e.client.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	require.Empty(t, e.blobFiles(), "nothing of a refused upload is kept")
	requireXRPCError(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post",
		"record": imagePost("too big", map[string]any{"$type": "blob", "ref": map[string]any{"$link": rawCID(t, big).String()}, "mimeType": "image/png", "size": len(big)})}, alice.Access), 400, "InvalidRequest")

	// Exactly at the limit is fine.
	requireOK(t, e.upload(alice.Access, "application/octet-stream", big[:1024]))
	require.Len(t, e.blobFiles(), 1)
}

func TestBlobGarbageCollection(t *testing.T) {
	const grace = 1500 * time.Millisecond
	e := newEnv(t, func(c *pds.Config) { c.BlobGrace = grace })
	ctx := context.Background()
	alice := e.createAccount("alice")

	start := time.Now()
	orphan := e.uploadOK(alice.Access, testPNG(t, 10)) // never referenced
	shared := e.uploadOK(alice.Access, testPNG(t, 11)) // referenced by two posts, then freed
	kept := e.uploadOK(alice.Access, testPNG(t, 12))   // stays referenced
	p1 := e.createPost(alice, imagePost("one", shared))
	p2 := e.createPost(alice, imagePost("two", shared, kept))

	// Deleting one of two referencing records keeps the blob; deleting the last frees it.
	e.deletePost(alice, p1)
	require.Equal(t, http.StatusOK, e.getBlob(alice.DID, blobLink(shared)).Status)
	e.deletePost(alice, p2)
	requireXRPCError(t, e.getBlob(alice.DID, blobLink(shared)), 400, "BlobNotFound")
	e.createPost(alice, imagePost("three", kept))
	require.Less(t, time.Since(start), grace, "test setup too slow for the grace period")
	require.Len(t, e.blobFiles(), 3, "nothing is deleted before the grace period")

	// After the grace period, garbage collection deletes the unreferenced blobs' bytes.
	time.Sleep(time.Until(start.Add(grace + 100*time.Millisecond)))
	_, err := e.srv.CollectBlobGarbage(ctx)
	require.NoError(t, err)
	// (The background collector may have taken them first and be deleting the bytes.)
	require.Eventually(t, func() bool {
		files := e.blobFiles()
		return len(files) == 1 && files[0] == blobLink(kept)
	}, 3*time.Second, 20*time.Millisecond, "only the referenced blob remains: %v", e.blobFiles())
	g := e.getBlob(alice.DID, blobLink(kept))
	require.Equal(t, http.StatusOK, g.Status)
	require.Equal(t, testPNG(t, 12), g.Body)

	// A collected upload is gone: a record can no longer reference it.
	requireXRPCError(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": imagePost("late", orphan)}, alice.Access), 400, "InvalidRequest")
}
