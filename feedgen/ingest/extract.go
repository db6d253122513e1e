package ingest

import (
	"bytes"
	"errors"
	"fmt"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/hearth-social/hearth/feedgen/index"
)

// Wanted reports whether the index keeps records of a collection.
func Wanted(collection string) bool {
	switch collection {
	case index.CollectionPost, index.CollectionLike, index.CollectionRepost, index.CollectionFollow, index.CollectionProfile, index.CollectionFeedGen,
		index.CollectionAIPreference, index.CollectionUserIntents:
		return true
	}
	return false
}

// ErrBadRecord wraps records that cannot be decoded as their collection's type.
var ErrBadRecord = errors.New("undecodable record")

// DecodeRecord decodes a record's DAG-CBOR into the index type for its collection
// (*index.Post, *index.Like, *index.Repost, *index.Follow, *index.Profile,
// *index.FeedGenerator, *index.AIRecord for AI usage declarations). It returns
// nil, nil for collections the index does not keep. Unknown fields and embed types are
// ignored, as the lexicon rules ask.
func DecodeRecord(collection string, data []byte) (any, error) {
	switch collection {
	case index.CollectionPost:
		var rec bsky.FeedPost
		if err := rec.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadRecord, collection, err)
		}
		return postFromRecord(&rec), nil
	case index.CollectionLike:
		var rec bsky.FeedLike
		if err := rec.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadRecord, collection, err)
		}
		l := &index.Like{CreatedAt: datetime(rec.CreatedAt)}
		l.Subject, l.SubjectCID = strongRef(rec.Subject)
		return l, nil
	case index.CollectionRepost:
		var rec bsky.FeedRepost
		if err := rec.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadRecord, collection, err)
		}
		r := &index.Repost{CreatedAt: datetime(rec.CreatedAt)}
		r.Subject, r.SubjectCID = strongRef(rec.Subject)
		return r, nil
	case index.CollectionFollow:
		var rec bsky.GraphFollow
		if err := rec.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadRecord, collection, err)
		}
		if _, err := syntax.ParseDID(rec.Subject); err != nil {
			return nil, fmt.Errorf("%w: %s: subject: %w", ErrBadRecord, collection, err)
		}
		return &index.Follow{Subject: rec.Subject, CreatedAt: datetime(rec.CreatedAt)}, nil
	case index.CollectionAIPreference, index.CollectionUserIntents:
		m, err := atdata.UnmarshalCBOR(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadRecord, collection, err)
		}
		return &index.AIRecord{Data: m}, nil
	case index.CollectionFeedGen:
		var rec bsky.FeedGenerator
		if err := rec.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadRecord, collection, err)
		}
		if _, err := syntax.ParseDID(rec.Did); err != nil {
			return nil, fmt.Errorf("%w: %s: did: %w", ErrBadRecord, collection, err)
		}
		return &index.FeedGenerator{ServiceDID: rec.Did}, nil
	case index.CollectionProfile:
		var rec bsky.ActorProfile
		if err := rec.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadRecord, collection, err)
		}
		p := &index.Profile{DisplayName: deref(rec.DisplayName), Description: deref(rec.Description)}
		if rec.Avatar != nil {
			p.Avatar = rec.Avatar.Ref.String()
		}
		if rec.Labels != nil {
			p.Labels = selfLabels(rec.Labels.LabelDefs_SelfLabels)
		}
		return p, nil
	}
	return nil, nil
}

func postFromRecord(rec *bsky.FeedPost) *index.Post {
	p := &index.Post{Text: rec.Text, CreatedAt: datetime(rec.CreatedAt)}
	for _, l := range rec.Langs {
		if _, err := syntax.ParseLanguage(l); err == nil {
			p.Langs = append(p.Langs, l)
		}
	}
	if rec.Reply != nil {
		p.ReplyRoot, _ = strongRef(rec.Reply.Root)
		p.ReplyParent, _ = strongRef(rec.Reply.Parent)
	}
	seen := map[string]bool{}
	addTag := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			p.Tags = append(p.Tags, t)
		}
	}
	for _, f := range rec.Facets {
		if f == nil {
			continue
		}
		for _, feat := range f.Features {
			if feat != nil && feat.RichtextFacet_Tag != nil {
				addTag(feat.RichtextFacet_Tag.Tag)
			}
		}
	}
	for _, t := range rec.Tags {
		addTag(t)
	}
	if rec.Labels != nil {
		p.Labels = selfLabels(rec.Labels.LabelDefs_SelfLabels)
	}
	if e := rec.Embed; e != nil {
		p.Images = images(e.EmbedImages, e.EmbedGallery)
		p.Images = append(p.Images, video(e.EmbedVideo)...)
		if e.EmbedRecordWithMedia != nil && e.EmbedRecordWithMedia.Media != nil {
			m := e.EmbedRecordWithMedia.Media
			p.Images = append(p.Images, images(m.EmbedImages, m.EmbedGallery)...)
			p.Images = append(p.Images, video(m.EmbedVideo)...)
		}
	}
	return p
}

func images(im *bsky.EmbedImages, g *bsky.EmbedGallery) []index.Image {
	var out []index.Image
	add := func(b *lexutil.LexBlob, alt string) {
		if b != nil && b.Ref.Defined() {
			out = append(out, index.Image{CID: b.Ref.String(), MIME: b.MimeType, Alt: alt})
		}
	}
	if im != nil {
		for _, img := range im.Images {
			if img != nil {
				add(img.Image, img.Alt)
			}
		}
	}
	if g != nil {
		for _, it := range g.Items {
			if it != nil && it.EmbedGallery_Image != nil {
				add(it.EmbedGallery_Image.Image, it.EmbedGallery_Image.Alt)
			}
		}
	}
	return out
}

// video returns an app.bsky.embed.video blob as a media item: the classifier reads
// C2PA and XMP from MP4/MOV containers, and the worker fetches it through getBlob
// with the same size cap and timeout as images (a longer video is recorded as
// unavailable, never truncated: C2PA may sit after the media data).
func video(v *bsky.EmbedVideo) []index.Image {
	if v == nil || v.Video == nil || !v.Video.Ref.Defined() {
		return nil
	}
	return []index.Image{{CID: v.Video.Ref.String(), MIME: v.Video.MimeType, Alt: deref(v.Alt)}}
}

func selfLabels(sl *comatproto.LabelDefs_SelfLabels) []string {
	if sl == nil {
		return nil
	}
	var out []string
	for _, v := range sl.Values {
		if v != nil && v.Val != "" {
			out = append(out, v.Val)
		}
	}
	return out
}

// strongRef returns a reference's URI (when it is a valid AT-URI) and CID.
func strongRef(r *comatproto.RepoStrongRef) (string, string) {
	if r == nil {
		return "", ""
	}
	if _, err := syntax.ParseATURI(r.Uri); err != nil {
		return "", ""
	}
	return r.Uri, r.Cid
}

// datetime keeps a valid datetime and drops anything else (the index uses its own time).
func datetime(s string) string {
	if _, err := syntax.ParseDatetimeLenient(s); err != nil {
		return ""
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
