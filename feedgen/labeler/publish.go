package labeler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"

	"github.com/hearth-social/hearth/internal/xrpc"
)

// ServiceCollection is the NSID of the labeler declaration record (rkey "self").
const ServiceCollection = "app.bsky.labeler.service"

// DefaultValues are the label values `hearth labeler publish` declares by default.
var DefaultValues = []string{ValueAIGenerated, ValueAIAssisted}

// Definitions declares the label values this labeler can publish. Both are
// informational badges: severity inform, nothing blurred, shown by default (warn).
var Definitions = map[string]comatproto.LabelDefs_LabelValueDefinition{
	ValueAIGenerated: definition(ValueAIGenerated, "AI generated",
		"Machine-readable provenance says this media was made by generative AI: a C2PA content "+
			"credential or IPTC digital source type, image-generator metadata (such as Stable Diffusion, "+
			"ComfyUI, NovelAI or InvokeAI parameters), or the author's own label. Applied automatically "+
			"and only on such evidence-based signals, never on guesses from style or text; removed when the "+
			"evidence goes away (the post is deleted or edited). No label does not mean a post is human-made."),
	ValueNoAITraining: definition(ValueNoAITraining, "No AI training",
		"The account has declared that its public data may not be used to train AI models (a "+
			"community.lexicon.preference.ai record in its repository denying training). Informational: "+
			"it states the author's wish, carried with their data; it hides nothing."),
	ValueAIAssisted: definition(ValueAIAssisted, "AI assisted",
		"Machine-readable provenance says this media was edited or composited with generative AI "+
			"(for example a C2PA or IPTC digital source type of composite with trained algorithmic media, "+
			"or a generative edit action), or the author labelled it so. Applied automatically and only on "+
			"such evidence-based signals; removed when the evidence goes away."),
}

func definition(id, name, desc string) comatproto.LabelDefs_LabelValueDefinition {
	warn := "warn"
	adult := false
	return comatproto.LabelDefs_LabelValueDefinition{
		Identifier:     id,
		Severity:       "inform",
		Blurs:          "none",
		DefaultSetting: &warn,
		AdultOnly:      &adult,
		Locales:        []*comatproto.LabelDefs_LabelValueDefinitionStrings{{Lang: "en", Name: name, Description: desc}},
	}
}

// ServiceRecord builds the app.bsky.labeler.service record declaring vals (each must
// be in Definitions).
func ServiceRecord(vals []string, createdAt time.Time) (*bsky.LabelerService, error) {
	if len(vals) == 0 {
		return nil, errors.New("no label values to declare")
	}
	pol := &bsky.LabelerDefs_LabelerPolicies{}
	seen := map[string]bool{}
	for _, v := range vals {
		if seen[v] {
			continue
		}
		seen[v] = true
		def, ok := Definitions[v]
		if !ok {
			known := make([]string, 0, len(Definitions))
			for k := range Definitions {
				known = append(known, k)
			}
			slices.Sort(known)
			return nil, fmt.Errorf("label value %q has no definition (known: %s)", v, strings.Join(known, ", "))
		}
		pol.LabelValues = append(pol.LabelValues, &v)
		pol.LabelValueDefinitions = append(pol.LabelValueDefinitions, &def)
	}
	return &bsky.LabelerService{
		LexiconTypeID: ServiceCollection,
		CreatedAt:     createdAt.UTC().Format(ctsFormat),
		Policies:      pol,
	}, nil
}

// PublishOptions says where and as whom to publish the declaration.
type PublishOptions struct {
	// PDS is the base URL of the labeler account's PDS.
	PDS string
	// Handle (or DID) and Password log in with com.atproto.server.createSession; use an
	// app password.
	Handle   string
	Password string
	// Values are the label values to declare (default DefaultValues).
	Values []string
	// Client is the HTTP client (default: one with a 30s timeout).
	Client *http.Client
	// Now is the record's createdAt (default time.Now()).
	Now time.Time
}

// PublishResult is what Publish wrote.
type PublishResult struct {
	DID    string
	URI    string
	CID    string
	Record *bsky.LabelerService
}

// Publish logs in to the PDS and writes (creates or replaces) the account's
// app.bsky.labeler.service/self record. The account's DID must be the labeler's DID
// (the src of its labels) for apps to attach the labels to the declaration.
func Publish(ctx context.Context, opts PublishOptions) (*PublishResult, error) {
	base := strings.TrimRight(opts.PDS, "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("PDS URL %q: want an http(s) URL", opts.PDS)
	}
	if opts.Handle == "" || opts.Password == "" {
		return nil, errors.New("handle and password are required")
	}
	vals := opts.Values
	if len(vals) == 0 {
		vals = DefaultValues
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	rec, err := ServiceRecord(vals, now)
	if err != nil {
		return nil, err
	}
	c := &xrpc.Client{Base: base, HTTP: opts.Client}
	sess, err := c.Login(ctx, opts.Handle, opts.Password)
	if err != nil {
		return nil, err
	}
	uri, cid, err := c.PutRecord(ctx, sess, ServiceCollection, "self", rec)
	if err != nil {
		return nil, err
	}
	return &PublishResult{DID: sess.DID, URI: uri, CID: cid, Record: rec}, nil
}
