package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/urfave/cli/v2"
)

// The AI usage declaration record (lexicons/community/lexicon/preference/ai.json).
const aiPreferenceNSID = "community.lexicon.preference.ai"

// aiPreferenceFlags are the record's categories and the flag that sets each.
var aiPreferenceFlags = []struct{ flag, field, usage string }{
	{"training", "training", "training, fine-tuning or distillation of ML models"},
	{"inference", "inference", "use at inference time (retrieval, RAG, context)"},
	{"synthetic", "syntheticContent", "generating synthetic content or interactions"},
	{"embedding", "embedding", "vector embeddings and semantic indexing"},
}

func accountAIPreferencesCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "pds", Value: "http://127.0.0.1:2583", Usage: "the account's PDS", EnvVars: []string{"HEARTH_PDS_URL"}},
		&cli.StringFlag{Name: "did", Required: true, Usage: "the account (DID or handle) to sign in as"},
		&cli.StringFlag{Name: "password", Required: true, Usage: "the account password or an app password", EnvVars: []string{"HEARTH_ACCOUNT_PASSWORD"}},
		&cli.StringFlag{Name: "collection", Usage: "declare for this collection only (e.g. app.bsky.feed.post), overriding the account default"},
	}
	for _, f := range aiPreferenceFlags {
		flags = append(flags, &cli.StringFlag{Name: f.flag, Usage: "allow, deny or unset: " + f.usage})
	}
	return &cli.Command{
		Name:  "ai-preferences",
		Usage: "declare how the account's public data may be used by AI (a community.lexicon.preference.ai record in its repo; categories not given keep what was declared)",
		Description: "The declaration is an ordinary repo record, so it travels with the repo (firehose, export, migration).\n" +
			"A Hearth PDS sends it with every public read of the account's data as a Content-Usage header (e.g. train-ai=n).",
		Flags:  flags,
		Action: runAccountAIPreferences,
	}
}

func runAccountAIPreferences(cctx *cli.Context) error {
	ctx := cctx.Context
	changes := map[string]string{}
	for _, f := range aiPreferenceFlags {
		switch v := cctx.String(f.flag); v {
		case "":
		case "allow", "deny", "unset":
			changes[f.field] = v
		default:
			return fmt.Errorf("--%s: want allow, deny or unset, got %q", f.flag, v)
		}
	}
	var coll string
	if c := cctx.String("collection"); c != "" {
		n, err := syntax.ParseNSID(c)
		if err != nil {
			return fmt.Errorf("--collection: %w", err)
		}
		coll = n.String()
	}
	client, err := xrpc.NewClient(cctx.String("pds"))
	if err != nil {
		return fmt.Errorf("--pds (HEARTH_PDS_URL): %w", err)
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sess, err := client.Login(lctx, cctx.String("did"), cctx.String("password"))
	if err != nil {
		return err
	}
	rkey, rec, err := findAIPreference(lctx, client, sess, coll)
	if err != nil {
		return err
	}
	now := syntax.DatetimeNow().String()
	prefs, _ := rec["preferences"].(map[string]any)
	if prefs == nil {
		prefs = map[string]any{}
	}
	for field, v := range changes {
		if v == "unset" {
			delete(prefs, field)
			continue
		}
		prefs[field] = map[string]any{"allow": v == "allow", "updatedAt": now}
	}
	scope := map[string]any{"$type": aiPreferenceNSID + "#globalScope"}
	if coll != "" {
		scope = map[string]any{"$type": aiPreferenceNSID + "#collectionScope", "collection": coll}
	}
	rec = map[string]any{"$type": aiPreferenceNSID, "updatedAt": now, "scope": scope, "preferences": prefs}
	if rkey == "" {
		rkey = syntax.NewTIDNow(0).String()
	}
	uri, _, err := client.PutRecord(lctx, sess, aiPreferenceNSID, rkey, rec)
	if err != nil {
		return err
	}
	var desc struct {
		ContentUsage struct {
			Default     string            `json:"default"`
			Collections map[string]string `json:"collections"`
		} `json:"contentUsage"`
	}
	if err := client.Query(lctx, "com.atproto.repo.describeRepo", "", url.Values{"repo": {sess.DID}}, &desc); err != nil {
		return fmt.Errorf("reading the declaration back: %w", err)
	}
	out := cctx.App.Writer
	fmt.Fprintf(out, "wrote %s\n", uri)
	shown := desc.ContentUsage.Default
	if coll != "" {
		shown = desc.ContentUsage.Collections[coll]
	}
	if shown == "" {
		shown = "(nothing the HTTP vocabulary can say: no header)"
	}
	fmt.Fprintf(out, "Content-Usage: %s\n", shown)
	return nil
}

// findAIPreference returns the record to update: self for the account default, the
// override naming coll otherwise ("" rkey: none yet).
func findAIPreference(ctx context.Context, client *xrpc.Client, sess *xrpc.Session, coll string) (string, map[string]any, error) {
	type record struct {
		URI   string         `json:"uri"`
		Value map[string]any `json:"value"`
	}
	if coll == "" {
		var r record
		err := client.Query(ctx, "com.atproto.repo.getRecord", "", url.Values{"repo": {sess.DID}, "collection": {aiPreferenceNSID}, "rkey": {"self"}}, &r)
		var re *xrpc.ResponseError
		if errors.As(err, &re) && re.Name == "RecordNotFound" {
			return "self", nil, nil
		}
		if err != nil {
			return "", nil, fmt.Errorf("reading the current declaration: %w", err)
		}
		return "self", r.Value, nil
	}
	cursor := ""
	for page := 0; page < 100; page++ {
		var out struct {
			Records []record `json:"records"`
			Cursor  string   `json:"cursor"`
		}
		params := url.Values{"repo": {sess.DID}, "collection": {aiPreferenceNSID}, "limit": {"100"}}
		if cursor != "" {
			params.Set("cursor", cursor)
		}
		if err := client.Query(ctx, "com.atproto.repo.listRecords", "", params, &out); err != nil {
			return "", nil, fmt.Errorf("reading the current declarations: %w", err)
		}
		for _, r := range out.Records {
			scope, _ := r.Value["scope"].(map[string]any)
			if c, _ := scope["collection"].(string); c == coll {
				u, err := syntax.ParseATURI(r.URI)
				if err != nil {
					return "", nil, fmt.Errorf("the PDS listed a bad record URI %q", r.URI)
				}
				return u.RecordKey().String(), r.Value, nil
			}
		}
		if out.Cursor == "" || len(out.Records) == 0 {
			break
		}
		cursor = out.Cursor
	}
	return "", nil, nil
}
