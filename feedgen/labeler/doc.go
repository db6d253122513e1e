// Package labeler is the feed generator's labeler: it signs, stores and serves the
// labels (ai-generated, ai-assisted) that let any Bluesky-compatible app show a badge
// on posts whose media carries deterministic (tier-0) AI-provenance evidence.
//
// # Storage
//
// The labeler has its own SQLite file (Config.Path). The table labels is the log of
// every label ever emitted (seq is the subscribeLabels sequence number); label_state
// holds the latest label per (src, uri, val), and the view current_labels the labels in
// force. The K-256 signing key is generated on first Open and kept in the same file;
// back the file up with the rest of the data directory (losing it means a new key and a
// DID document update).
//
// # Emitting
//
// The classifier calls Apply(ctx, uri, cid, vals) with the complete set of values a
// subject should carry. Apply diffs it against current_labels: new values get a label,
// values that went away get a negation (neg: true), an unchanged set emits nothing, so
// calling it again after every (re)classification is safe. A deleted post is
// Apply(ctx, uri, "", nil). Labels are version 1, signed over their DAG-CBOR encoding
// without sig, with indigo's atproto/labeling.
//
// # Serving
//
// Handler serves com.atproto.label.queryLabels and com.atproto.label.subscribeLabels.
// The feed generator mounts it next to its own routes:
//
//	mux.Handle("GET "+labeler.PathQueryLabels, lab.Handler())
//	mux.Handle("GET "+labeler.PathSubscribeLabels, lab.Handler())
//
// and, on shutdown, calls lab.Shutdown(ctx) before http.Server.Shutdown (hijacked
// websocket connections are not tracked by the HTTP server), then lab.Close().
//
// # DID document
//
// Apps find the labeler through the DID document of the labeler DID (Config.DID, the
// src of every label): it needs an #atproto_labeler service (type AtprotoLabeler, the
// public URL) and an #atproto_label Multikey verification method (the labeler key).
// The feed generator's /.well-known/did.json handler merges them into its did:web
// document:
//
//	doc := map[string]any{ /* "@context", "id", "service": [#bsky_fg ...] */ }
//	doc = labeler.MergeDIDDocument(doc, lab.DIDDocument(serviceDID, publicURL))
//	xrpc.WriteJSON(w, http.StatusOK, doc)
//
// MergeDIDDocument appends the @context entry, the verification method and the service
// (skipping ids already present).
//
// # Declaration
//
// `hearth labeler publish --pds URL --handle H --password P` (Publish) writes the
// app.bsky.labeler.service/self record with the value definitions (Definitions) to the
// labeler account's repository. Apps tie labels to that declaration by DID, so the
// account's DID must equal Config.DID.
package labeler
