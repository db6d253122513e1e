package pds

import (
	"testing"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/hearth-social/hearth/lexicons"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

func TestMIMEAccepted(t *testing.T) {
	for _, c := range []struct {
		pattern, mime string
		ok            bool
	}{
		{"image/*", "image/png", true},
		{"image/*", "text/html", false},
		{"*/*", "text/html", true},
		{"image/png", "image/png", true},
		{"image/png", "IMAGE/PNG", true},
		{"image/png", "image/jpeg", false},
		{"video/mp4", "", false},
	} {
		require.Equal(t, c.ok, mimeAccepted(c.pattern, c.mime), "%s vs %s", c.pattern, c.mime)
	}
}

func TestFindBlobUses(t *testing.T) {
	cat, err := lexicons.NewCatalog().Load()
	require.NoError(t, err)
	mh, err := multihash.Sum([]byte("x"), multihash.SHA2_256, -1)
	require.NoError(t, err)
	b := atdata.Blob{Ref: atdata.CIDLink(cid.NewCidV1(cid.Raw, mh)), MimeType: "image/png", Size: 10}
	// A post whose media sits two unions deep (recordWithMedia -> images), with a
	// blob in a field the schema does not know.
	rec := map[string]any{
		"$type": "app.bsky.feed.post",
		"text":  "x",
		"embed": map[string]any{
			"$type": "app.bsky.embed.recordWithMedia",
			"media": map[string]any{
				"$type":  "app.bsky.embed.images",
				"images": []any{map[string]any{"alt": "", "image": b}},
			},
		},
		"extra": b,
	}
	uses := findBlobUses(cat, "app.bsky.feed.post", rec)
	require.Len(t, uses, 2)
	require.Equal(t, "embed.media.images[0].image", uses[0].Field)
	require.Equal(t, []string{"image/*"}, uses[0].Accept)
	require.EqualValues(t, 2_000_000, uses[0].MaxSize)
	require.Equal(t, "extra", uses[1].Field)
	require.Empty(t, uses[1].Accept)
	require.Zero(t, uses[1].MaxSize)

	prof := findBlobUses(cat, "app.bsky.actor.profile", map[string]any{"$type": "app.bsky.actor.profile", "avatar": b})
	require.Len(t, prof, 1)
	require.Equal(t, []string{"image/png", "image/jpeg"}, prof[0].Accept)
	require.EqualValues(t, 1_000_000, prof[0].MaxSize)

	// Unknown collections: blobs found, no constraints.
	unk := findBlobUses(cat, "com.example.thing", map[string]any{"list": []any{b, b}})
	require.Len(t, unk, 2)
	require.Equal(t, "list[1]", unk[1].Field)
}
