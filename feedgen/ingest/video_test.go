package ingest

import (
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/stretchr/testify/require"
)

// Video embeds are media the classifier reads (C2PA and XMP in MP4/MOV).
func TestDecodeVideoPost(t *testing.T) {
	vid := testCID(t, "video")
	img := testCID(t, "img")
	alt := "a timelapse"
	parent := "at://did:plc:abc/app.bsky.feed.post/3kparent"
	for name, tt := range map[string]struct {
		embed *bsky.FeedPost_Embed
		want  []index.Image
	}{
		"video": {&bsky.FeedPost_Embed{EmbedVideo: &bsky.EmbedVideo{Alt: &alt, Video: &lexutil.LexBlob{Ref: vid, MimeType: "video/mp4", Size: 1000}}},
			[]index.Image{{CID: vid.String(), MIME: "video/mp4", Alt: alt}}},
		"video without blob": {&bsky.FeedPost_Embed{EmbedVideo: &bsky.EmbedVideo{}}, nil},
		"record with video": {&bsky.FeedPost_Embed{EmbedRecordWithMedia: &bsky.EmbedRecordWithMedia{
			Record: &bsky.EmbedRecord{Record: &comatproto.RepoStrongRef{Uri: parent, Cid: "x"}},
			Media:  &bsky.EmbedRecordWithMedia_Media{EmbedVideo: &bsky.EmbedVideo{Video: &lexutil.LexBlob{Ref: vid, MimeType: "video/quicktime"}}},
		}}, []index.Image{{CID: vid.String(), MIME: "video/quicktime"}}},
		"images stay first": {&bsky.FeedPost_Embed{EmbedImages: &bsky.EmbedImages{Images: []*bsky.EmbedImages_Image{{Alt: "i", Image: &lexutil.LexBlob{Ref: img, MimeType: "image/png"}}}}},
			[]index.Image{{CID: img.String(), MIME: "image/png", Alt: "i"}}},
	} {
		t.Run(name, func(t *testing.T) {
			post := &bsky.FeedPost{LexiconTypeID: index.CollectionPost, Text: "t", CreatedAt: "2026-02-03T04:05:06.789Z", Embed: tt.embed}
			got, err := DecodeRecord(index.CollectionPost, cborOf(t, post))
			require.NoError(t, err)
			require.Equal(t, tt.want, got.(*index.Post).Images)
		})
	}
}
