package pds_test

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// blobRef is a blob ref as a record carries it.
func blobRef(link, mime string, size int) map[string]any {
	return map[string]any{"$type": "blob", "ref": map[string]any{"$link": link}, "mimeType": mime, "size": size}
}

func (e *env) putProfile(a *account, avatar map[string]any, validate *bool) *resp {
	e.t.Helper()
	in := map[string]any{"repo": a.DID, "collection": "app.bsky.actor.profile", "rkey": "self",
		"record": map[string]any{"$type": "app.bsky.actor.profile", "displayName": "A", "avatar": avatar}}
	if validate != nil {
		in["validate"] = *validate
	}
	return e.post("com.atproto.repo.putRecord", in, a.Access)
}

// TestBlobRefsCheckedAgainstStoredBlob: a record's blob ref must match the uploaded
// blob's real size and sniffed type, and the field's accept and maxSize are checked
// against those stored values, with or without lexicon validation.
func TestBlobRefsCheckedAgainstStoredBlob(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	no := false

	// 3 MB that sniffs as PNG: too large for an avatar (maxSize 1,000,000).
	big := make([]byte, 3<<20)
	rand.Read(big)
	copy(big, "\x89PNG\r\n\x1a\n")
	bigRef := e.uploadOK(alice.Access, big)
	require.Equal(t, "image/png", bigRef["mimeType"])
	link := blobLink(bigRef)
	head, _ := e.latest(alice.DID)

	// Declaring a small size is caught against the stored size.
	r := e.putProfile(alice, blobRef(link, "image/png", 1000), nil)
	requireXRPCError(t, r, 400, "InvalidRequest")
	require.Contains(t, r.Str("message"), "avatar")
	require.Contains(t, r.Str("message"), "1000 bytes")
	require.Contains(t, r.Str("message"), "3145728 bytes")
	// Declared truthfully, skipping validation does not skip the field's maxSize.
	r = e.putProfile(alice, blobRef(link, "image/png", len(big)), &no)
	requireXRPCError(t, r, 400, "BlobTooLarge")
	require.Contains(t, r.Str("message"), "avatar")

	// An HTML upload declared as JPEG is caught against the sniffed type.
	html := e.upload(alice.Access, "image/jpeg", []byte("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"))
	requireOK(t, html)
	htmlRef := html.JSON["blob"].(map[string]any)
	require.Equal(t, "text/html", htmlRef["mimeType"])
	htmlLink, htmlSize := blobLink(htmlRef), int(htmlRef["size"].(float64))
	r = e.putProfile(alice, blobRef(htmlLink, "image/jpeg", htmlSize), nil)
	requireXRPCError(t, r, 400, "InvalidRequest")
	require.Contains(t, r.Str("message"), "avatar")
	require.Contains(t, r.Str("message"), `"text/html"`)
	// Declared truthfully, the field's accept list applies to the stored type.
	requireXRPCError(t, e.putProfile(alice, blobRef(htmlLink, "text/html", htmlSize), &no), 400, "InvalidMimeType")
	// Wildcard accepts (image/* of an image embed), nested in a union and an array.
	p := imagePost("html as an image", blobRef(htmlLink, "text/html", htmlSize))
	r = e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post", "record": p, "validate": false}, alice.Access)
	requireXRPCError(t, r, 400, "InvalidMimeType")
	require.Contains(t, r.Str("message"), "embed.images[0].image")
	// Records of unknown lexicons still may not misdeclare a blob.
	r = e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.thing",
		"record": map[string]any{"file": blobRef(htmlLink, "image/png", htmlSize)}}, alice.Access)
	requireXRPCError(t, r, 400, "InvalidRequest")
	require.Contains(t, r.Str("message"), "file")
	// applyWrites goes through the same check.
	r = e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": []any{map[string]any{
		"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.actor.profile", "rkey": "self",
		"value": map[string]any{"$type": "app.bsky.actor.profile", "avatar": blobRef(link, "image/png", 1000)}}}}, alice.Access)
	requireXRPCError(t, r, 400, "InvalidRequest")
	after, _ := e.latest(alice.DID)
	require.Equal(t, head, after, "a refused record must not be committed")

	// A true ref to a fitting image is accepted, honest unknown-lexicon refs too.
	small := e.uploadOK(alice.Access, testPNG(t, 40))
	requireOK(t, e.putProfile(alice, small, nil))
	requireOK(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.thing",
		"record": map[string]any{"file": htmlRef}}, alice.Access))
	requireOK(t, e.getBlob(alice.DID, blobLink(small)))
}
