// Package classify tells AI-generated posts from human ones, with evidence.
//
// It is pure: functions of bytes and records, no network, no SQL. The
// feed generator's ingest fetches the original blobs (com.atproto.sync.getBlob
// on the author's PDS, never a CDN rendition) and passes them in; results
// for a blob depend only on its bytes, so they may be cached by CID.
//
// # Inputs and outputs
//
// A PostInput carries the post text, hashtags (Tags), the post's
// self-label values (SelfLabels), the author's profile self-label values
// (AuthorLabels, where "bot" marks an automated account) and the attached
// Media (CID, MIME, the original Bytes and Alt text).
//
// A Classifier runs Scorers, each returning typed Evidence: a Signal name,
// the Class it speaks for (ai_generated, ai_assisted, human_declared,
// human_capture, automated, info), a signed log-odds Weight (positive
// toward AI), a Tier (0 deterministic, 1 weak claim, 2 heuristic), a
// Locator ("blob:<cid> png:iTXt[parameters]") and a short Excerpt. Combine
// turns the evidence into a Verdict: a Label (ai_generated, ai_assisted,
// human_declared, unknown), a Confidence, an AIScore and the evidence,
// strongest first.
//
// Built-in scorers: SelfLabelScorer (post and profile self-labels),
// MediaScorer (container metadata) and TextScorer (hashtags, "[ai]",
// "made with midjourney", LLM boilerplate). Default wires all three.
//
// # Decision rules
//
//   - Tier-0 evidence decides. Any tier-0 ai_generated evidence gives
//     ai_generated; else tier-0 ai_assisted gives ai_assisted. Self-
//     incriminating AI claims win over conflicting human claims (a typed-in
//     camera Make next to A1111 parameters is still AI).
//   - human_declared needs positive human evidence at tier ≤ 1 (C2PA or
//     IPTC digitalCapture, camera EXIF Make+Model) and no AI evidence at
//     tier ≤ 1.
//   - Everything else is unknown. Missing metadata is NOT human evidence:
//     the Bluesky app and CDN strip it, so most human photos look exactly
//     like most AI images.
//   - Heuristics (tier 2) never set a label, and do not enter Confidence;
//     they only move AIScore, capped. Per-tier caps on summed log-odds keep
//     a pile of weak signals from adding up to a declaration.
//   - Output is deterministic: evidence is de-duplicated and sorted (tier,
//     |weight|, signal, locator, ...) before it is summed.
//
// Weights are a versioned table (Version), not calibrated probabilities;
// Eval on a labelled corpus is how changes to them are judged.
//
// # Evidence sources (one file each)
//
//   - jpeg.go, png.go, webp.go, bmff.go: container walkers (JPEG
//     segments, PNG chunks, RIFF chunks, ISO BMFF boxes of MP4/MOV video
//     and HEIC/AVIF images: C2PA and XMP uuid boxes, moov/udta/XMP_, HEIF
//     Exif and XMP items) collecting EXIF, XMP, C2PA JUMBF and text.
//   - jumbf.go, c2pa.go, c2pa_verify.go, cbor.go: JUMBF boxes, the C2PA
//     manifest store and its signature validation
//     (active manifest = last; c2pa.actions / c2pa.actions.v2
//     digitalSourceType; claim_generator / claim_generator_info), and a
//     minimal bounded CBOR reader.
//   - xmp.go, iptc.go: IPTC Iptc4xmpExt:DigitalSourceType (attribute,
//     element or rdf:resource; matched by namespace URI, not prefix) and
//     the vocabulary policy; IPTC 2025.1 AI properties; CreatorTool.
//   - exif.go: TIFF IFD0 + Exif sub-IFD in both byte orders: Software,
//     ImageDescription, Make, Model, UserComment (UNICODE/ASCII).
//   - pngtext.go, generator.go: generator fingerprints (A1111, ComfyUI,
//     NovelAI, InvokeAI, Midjourney, SwarmUI, Easy Diffusion, Fooocus-style
//     JSON) and generator/camera names in software fields.
//   - selflabel.go, text.go: record and account scorers.
//   - combine.go: the Classifier and Combine. eval.go: corpus evaluation.
//
// # Tricky bits
//
//   - No maintained, served Go library reads C2PA, JUMBF, PNG text chunks or
//     IPTC DigitalSourceType, so the parsers are small and hand-written.
//     Every length is checked against the bytes left before slicing or
//     allocating; JUMBF and CBOR nesting, box, item, segment and chunk
//     counts are capped; zlib output is capped at 1 MiB (zip bombs); blobs
//     over MaxMediaBytes are refused. Damage is reported as ClassInfo
//     evidence ("media.problem", "c2pa.error"), never a panic.
//   - JPEG C2PA is split over APP11 segments: "JP", box instance En, packet
//     sequence Z (from 1, or from 0 as Bing Image Creator writes it; the C2PA
//     SDK reads both). Packets are grouped by En and ordered by Z;
//     continuations repeat the superbox's 8-byte LBox+TBox, which is
//     dropped. A missing Z ends the box at the gap.
//   - C2PA manifests are validated (c2pa_verify.go): the COSE_Sign1 claim
//     signature (go-cose), the x5chain certificate chain against an
//     operator-supplied TrustList (crypto/x509; none ships), certificate
//     validity at the signing time, every assertion hash the claim lists,
//     and the active manifest's c2pa.hash.data binding to the asset. The
//     signing time is the genTime of the RFC 3161 time-stamp in the
//     sigTst/sigTst2 header (c2pa_timestamp.go, digitorus/timestamp) when
//     its imprint covers the signature, its TSA signature verifies and the
//     TSA chains to the TrustList, which holds TSA roots too; else the
//     validation time. The "c2pa.signature" evidence says valid, invalid
//     or unverifiable and why, and "c2pa.timestamp" what the time-stamp
//     check found. A failed time-stamp is ignored (informational in
//     C2PA), so an expired signer with one is invalid; with an untrusted
//     TSA it is unverifiable. An AI claim counts whatever the status (nobody gains by falsely
//     declaring AI); a digitalCapture claim is weak when unverifiable,
//     doubled when valid, and never counted from an invalid manifest. An
//     AI source type in an earlier (ingredient) manifest makes the asset
//     ai_assisted. A claim generator or action agent/description naming a
//     known AI product counts at tier 0 only when the manifest has no
//     source type of its own.
//   - "compositeWithTrainedAlgorithmicMedia" contains "Trained…"; source
//     types are compared as whole codes, never substrings. algorithmicMedia
//     is not generative AI and is recorded as info only.
//   - Generator text is matched structurally (a "Steps: N, Sampler: …" line
//     that parses as key/value pairs, a ComfyUI graph whose nodes have
//     class_type and inputs, a JSON object with steps, sampler and seed).
//     Captions, comments and descriptions that merely mention "Stable
//     Diffusion" are decoys and produce no evidence.
//   - A1111 writes EXIF UserComment as "UNICODE\0" + UTF-16 big-endian
//     (piexif) even in little-endian TIFF; other writers follow the TIFF
//     order. A BOM wins, else the zero-byte side decides.
//   - PNG chunks with a bad CRC are dropped, as libpng drops ancillary
//     chunks. Text chunks may follow IDAT, so the walk goes to IEND. WebP
//     keeps C2PA last, so blobs must not be truncated before scanning.
//   - The profile "bot" label is automation, not AI content (earthquake
//     bots): a small tier-1 lean only. "ai-agent" on a profile or post is an
//     author declaration and counts at tier 0.
//
// # Corpus
//
// testdata/classify holds small synthetic fixtures made by
// internal/genfixtures (go generate) and labels.json; Eval classifies each
// item and reports precision, recall and the false-AI rate on human items.
// The project's corpus must score precision 1 and zero false-AI.
package classify

//go:generate go run ./internal/genfixtures -out ../../testdata/classify
