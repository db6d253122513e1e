package feedgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-social/hearth/feedgen/blobfetch"
	"github.com/hearth-social/hearth/feedgen/classify"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/feedgen/labeler"
)

// The classification worker runs beside ingest, never inside it: ingest stores every
// new or edited post with an 'unknown' verdict (classified_at NULL), and the worker
// picks such rows up from the index, so a restart simply finds them again.
//
// One dispatcher goroutine reads pending seqs (newest first) into a bounded queue;
// Workers goroutines classify them: they build a classify.PostInput from the index
// (text, languages, tags, self-labels, the author's profile labels, images with alt
// text), get each image's evidence from the per-CID cache or fetch the original blob
// with com.atproto.sync.getBlob from the author's PDS (blobfetch.Fetcher: DID document,
// dial guard, size cap, CID check, timeouts), and store the verdict if the post was not
// edited meanwhile. A transient failure (network, 5xx) is retried with backoff; after
// MaxAttempts the post is classified without that blob, whose failure is recorded as
// info evidence. Permanent failures (CID mismatch, too large, refused address, not
// found) are recorded at once.
//
// A second goroutine drains the labeler outbox: verdicts that ask for labels, and
// posts that carry labels and were deleted, hidden or re-classified, are re-applied to
// the labeler (labeler.Apply diffs, so this is idempotent and crash-safe).

// ClassifyConfig tunes the classification worker.
type ClassifyConfig struct {
	// Workers classify in parallel (default 2).
	Workers int
	// QueueSize bounds the queue between the dispatcher and the workers (default 64).
	QueueSize int
	// FetchTimeout bounds one blob fetch, DID resolution included (default 30s).
	FetchTimeout time.Duration
	// MaxImages caps the images fetched per post (default 20, a gallery's maximum).
	MaxImages int
	// MaxAttempts is how often a post whose blob fetch fails transiently is tried
	// before it is classified without that blob (default 5).
	MaxAttempts int
	// RetryBackoff is the first retry delay; it doubles per attempt, up to a minute
	// (default 1s).
	RetryBackoff time.Duration
	// PollInterval is the fallback re-scan interval (default 2s); the worker is woken
	// at once by every index write.
	PollInterval time.Duration
	// AccountLabels makes the labeler put the informational no-ai-training label on
	// accounts whose AI usage declarations deny training (opt-in by the operator; off,
	// no account is labelled and labels given before are withdrawn as accounts change).
	AccountLabels bool
	// Trust holds the C2PA trust anchors media signatures are checked against (nil:
	// none is trusted, so intact manifests are "unverifiable"). Cached media evidence
	// is keyed by the list's fingerprint, so changing the list re-reads the blobs.
	Trust *classify.TrustList
}

func (c *ClassifyConfig) defaults() {
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 64
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 30 * time.Second
	}
	if c.MaxImages <= 0 {
		c.MaxImages = 20
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
}

// Label values per verdict label. Only tier-0 evidence sets an AI verdict label
// (classify.Combine), so these are emitted for tier-0 evidence only.
func labelValues(v classify.Verdict) []string {
	tier0 := func(c classify.Class) bool {
		for _, e := range v.Evidence {
			if e.Class == c && e.Tier == classify.TierDeterministic && e.Weight > 0 {
				return true
			}
		}
		return false
	}
	switch {
	case v.Label == classify.LabelAIGenerated && tier0(classify.ClassAIGenerated):
		return []string{labeler.ValueAIGenerated}
	case v.Label == classify.LabelAIAssisted && tier0(classify.ClassAIAssisted):
		return []string{labeler.ValueAIAssisted}
	}
	return nil
}

// aiTier is the lowest tier of positive AI evidence (index.NoAITier when none).
func aiTier(v classify.Verdict) int {
	t := index.NoAITier
	for _, e := range v.Evidence {
		if (e.Class == classify.ClassAIGenerated || e.Class == classify.ClassAIAssisted) && e.Weight > 0 {
			t = min(t, max(e.Tier, 0))
		}
	}
	return t
}

// topSignals names up to three distinct non-info signals, strongest first.
func topSignals(v classify.Verdict) string {
	var out []string
	for _, e := range v.Evidence {
		if e.Class == classify.ClassInfo || len(out) == 3 {
			continue
		}
		dup := false
		for _, s := range out {
			dup = dup || s == e.Signal
		}
		if !dup {
			out = append(out, e.Signal)
		}
	}
	return strings.Join(out, ",")
}

// cachedMedia is a scorer returning media evidence computed (or cached) before.
type cachedMedia []classify.Evidence

func (cachedMedia) Name() string { return "media" }

func (c cachedMedia) Score(context.Context, *classify.PostInput) ([]classify.Evidence, error) {
	return c, nil
}

type retryState struct {
	attempts  int
	notBefore time.Time
}

type worker struct {
	cfg   ClassifyConfig
	idx   *index.Index
	fetch *blobfetch.Fetcher
	lab   *labeler.Labeler
	log   *slog.Logger
	now   func() time.Time

	queue     chan int64
	wake      chan struct{} // a worker finished
	labelWake chan struct{} // a verdict queued labels
	verdicts  *feedMetrics  // counts stored verdicts (set by New)

	mu       sync.Mutex
	inflight map[int64]bool
	retry    map[int64]*retryState

	classified, fetched, failed atomic.Int64
}

func newWorker(cfg ClassifyConfig, idx *index.Index, fetch *blobfetch.Fetcher, lab *labeler.Labeler, log *slog.Logger) *worker {
	cfg.defaults()
	return &worker{
		cfg: cfg, idx: idx, fetch: fetch, lab: lab, log: log, now: time.Now,
		queue:     make(chan int64, cfg.QueueSize),
		wake:      make(chan struct{}, 1),
		labelWake: make(chan struct{}, 1),
		inflight:  map[int64]bool{},
		retry:     map[int64]*retryState{},
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run classifies and labels until ctx is done, then waits for its goroutines.
func (w *worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range w.cfg.Workers {
		wg.Go(func() {
			for seq := range w.queue {
				err := w.process(ctx, seq)
				w.finish(seq, err)
			}
		})
	}
	wg.Go(func() { w.labelLoop(ctx) })
	w.dispatch(ctx)
	close(w.queue)
	wg.Wait()
	return nil
}

// dispatch feeds the queue until ctx is done.
func (w *worker) dispatch(ctx context.Context) {
	tick := time.NewTicker(w.cfg.PollInterval)
	defer tick.Stop()
	for {
		changed := w.idx.Changed()
		if err := w.enqueuePending(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("classification queue", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-w.wake:
		case <-tick.C:
		}
		// Coalesce bursts of index writes.
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (w *worker) enqueuePending(ctx context.Context) error {
	w.mu.Lock()
	limit := min(w.cfg.QueueSize+w.cfg.Workers+len(w.retry)+len(w.inflight)+16, 10_000)
	w.mu.Unlock()
	seqs, err := w.idx.PendingClassifications(ctx, limit)
	if err != nil {
		return err
	}
	now := w.now()
	for _, seq := range seqs {
		w.mu.Lock()
		skip := w.inflight[seq]
		if r := w.retry[seq]; r != nil && now.Before(r.notBefore) {
			skip = true
		}
		if !skip {
			w.inflight[seq] = true
		}
		w.mu.Unlock()
		if skip {
			continue
		}
		select {
		case w.queue <- seq:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

func (w *worker) finish(seq int64, err error) {
	w.mu.Lock()
	delete(w.inflight, seq)
	if err == nil {
		delete(w.retry, seq)
	} else {
		r := w.retry[seq]
		if r == nil {
			r = &retryState{}
			w.retry[seq] = r
		}
		r.attempts++
		delay := min(w.cfg.RetryBackoff<<min(r.attempts-1, 10), time.Minute)
		r.notBefore = w.now().Add(delay)
	}
	w.mu.Unlock()
	signal(w.wake)
}

func (w *worker) attempts(seq int64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r := w.retry[seq]; r != nil {
		return r.attempts
	}
	return 0
}

// process classifies one post. It returns an error when the post should be tried again.
func (w *worker) process(ctx context.Context, seq int64) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	post, err := w.idx.PostBySeq(ctx, seq)
	if errors.Is(err, index.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	last := w.attempts(seq)+1 >= w.cfg.MaxAttempts
	in := &classify.PostInput{URI: post.URI, Text: post.Text, Langs: post.Langs, Tags: post.Tags, SelfLabels: post.Labels}
	if prof, err := w.idx.Profile(ctx, post.Author); err == nil {
		in.AuthorLabels = prof.Labels
	} else if !errors.Is(err, index.ErrNotFound) {
		return err
	}
	var media cachedMedia
	for i, img := range post.Images {
		in.Media = append(in.Media, classify.Media{CID: img.CID, MIME: img.MIME, Alt: img.Alt})
		if i >= w.cfg.MaxImages {
			media = append(media, unavailable(img.CID, "not fetched: over the per-post image cap"))
			continue
		}
		ev, err := w.mediaEvidence(ctx, post.Author, img)
		switch {
		case err == nil:
			media = append(media, ev...)
		case ctx.Err() != nil:
			return ctx.Err()
		case blobfetch.IsPermanent(err) || last:
			w.failed.Add(1)
			w.log.Info("classifying without a blob", "post", post.URI, "blob", img.CID, "err", err)
			media = append(media, unavailable(img.CID, err.Error()))
		default:
			w.log.Debug("blob fetch failed; will retry", "post", post.URI, "blob", img.CID, "err", err)
			return err
		}
	}
	v, err := verdictFor(ctx, in, media)
	if err != nil {
		return err
	}
	v.Seq, v.PostCID = seq, post.CID
	stored, err := w.idx.StoreVerdict(ctx, v)
	if err != nil {
		return err
	}
	if stored {
		w.classified.Add(1)
		w.verdicts.countVerdict(v)
		signal(w.labelWake)
	}
	return nil
}

// verdictFor classifies a post with its media evidence (nil for a post without media):
// the one place verdicts are made, for the worker and for ingest's inline path alike.
func verdictFor(ctx context.Context, in *classify.PostInput, media cachedMedia) (index.Verdict, error) {
	v, err := classify.New(classify.SelfLabelScorer{}, media, classify.TextScorer{}).Classify(ctx, in)
	if err != nil {
		return index.Verdict{}, err
	}
	evidence, err := json.Marshal(v.Evidence)
	if err != nil {
		return index.Verdict{}, err
	}
	return index.Verdict{Label: string(v.Label), Confidence: v.Confidence, AIScore: v.AIScore, AITier: aiTier(v),
		Evidence: evidence, Signals: topSignals(v), LabelVals: labelValues(v), Version: v.Version}, nil
}

// classifyText is the index's inline classifier (index.Options.ClassifyText): a post
// without media is classified as it is indexed, from its text, tags, self-labels and
// the author's profile labels, with nothing to fetch.
func classifyText(ctx context.Context, uri string, p *index.Post, authorLabels []string) (index.Verdict, bool) {
	in := &classify.PostInput{URI: uri, Text: p.Text, Langs: p.Langs, Tags: p.Tags, SelfLabels: p.Labels, AuthorLabels: authorLabels}
	v, err := verdictFor(ctx, in, nil)
	return v, err == nil
}

// unavailable records a blob that could not be read: info evidence, which never moves
// the verdict (missing metadata is not evidence of anything).
func unavailable(cid, msg string) classify.Evidence {
	if len(msg) > 160 {
		msg = strings.ToValidUTF8(msg[:160], "") + "…"
	}
	return classify.Evidence{Signal: "media.unavailable", Class: classify.ClassInfo, Tier: classify.TierDeterministic,
		Locator: "blob:" + cid, Excerpt: msg}
}

// mediaVersion is the cache key's version of media evidence: the classifier's version
// and, with a trust list, its fingerprint (evidence depends on which signers are trusted).
func (w *worker) mediaVersion() string {
	if fp := w.cfg.Trust.Fingerprint(); fp != "" {
		return classify.Version + "+trust:" + fp
	}
	return classify.Version
}

// mediaEvidence returns a blob's evidence from the cache, or fetches, parses and caches it.
func (w *worker) mediaEvidence(ctx context.Context, did string, img index.Image) ([]classify.Evidence, error) {
	version := w.mediaVersion()
	raw, ok, err := w.idx.CachedMedia(ctx, img.CID, version)
	if err != nil {
		return nil, err
	}
	var ev []classify.Evidence
	if ok {
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("cached evidence of %s: %w", img.CID, err)
		}
		return ev, nil
	}
	fctx, cancel := context.WithTimeout(ctx, w.cfg.FetchTimeout)
	data, err := w.fetch.Fetch(fctx, did, img.CID)
	cancel()
	if err != nil {
		return nil, err
	}
	w.fetched.Add(1)
	ev = classify.MediaEvidenceWith(classify.Media{CID: img.CID, MIME: img.MIME, Bytes: data}, classify.MediaOptions{Trust: w.cfg.Trust})
	if ev == nil {
		ev = []classify.Evidence{}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	if err := w.idx.PutMedia(ctx, img.CID, int64(len(data)), b, version); err != nil {
		return nil, err
	}
	return ev, nil
}

// labelBatch is how many outbox entries one pass applies.
const labelBatch = 100

// labelLoop applies the labeler outbox until ctx is done.
func (w *worker) labelLoop(ctx context.Context) {
	tick := time.NewTicker(w.cfg.PollInterval)
	defer tick.Stop()
	for {
		changed := w.idx.Changed()
		n, err := w.applyLabels(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("applying labels", "err", err)
			n = 0 // wait before trying again
		}
		if n == labelBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-w.labelWake:
		case <-tick.C:
		}
		// Coalesce: the index changes with every ingest batch, hundreds of times a second
		// under load, and labels are not that urgent; one outbox read per window serves
		// every change in it.
		select {
		case <-ctx.Done():
			return
		case <-time.After(labelCoalesce):
		}
	}
}

// labelCoalesce is how long the label loop lets changes gather before reading the outbox.
const labelCoalesce = 100 * time.Millisecond

// applyLabels applies one batch of the outbox and returns its size.
func (w *worker) applyLabels(ctx context.Context) (int, error) {
	tasks, err := w.idx.LabelOutbox(ctx, labelBatch)
	if err != nil {
		return 0, err
	}
	for _, t := range tasks {
		if strings.HasPrefix(t.URI, "did:") {
			t.Vals = nil
			if t.DeniesTraining && w.cfg.AccountLabels {
				t.Vals = []string{labeler.ValueNoAITraining}
			}
		}
		if w.lab != nil {
			if _, err := w.lab.Apply(ctx, t.URI, t.CID, t.Vals); err != nil {
				return 0, fmt.Errorf("labeler apply %s: %w", t.URI, err)
			}
		}
		if err := w.idx.LabelDone(ctx, t); err != nil {
			return 0, err
		}
	}
	return len(tasks), nil
}
