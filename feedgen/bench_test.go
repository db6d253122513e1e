package feedgen_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/feedgen/rank"
)

const (
	benchPosts          = 1_000_000
	benchAuthors        = 20_000
	benchPostsPerCommit = 20
	benchViewers        = 1_000 // each follows 100 authors (per-author merge path)
	benchHeavyViewers   = 10    // each follows 1,000 authors (sequence scan path)
	benchClients        = 32
	benchRequests       = 8_000 // per scenario
)

func benchAuthor(i int) string { return fmt.Sprintf("did:plc:bauthor%016d", i) }
func benchViewer(i int) string { return fmt.Sprintf("did:plc:bviewer%016d", i) }

// buildBenchIndex fills an index with 1,000,000 posts (through index.Apply, in large
// batches) and the viewers' follows. It is kept in the temp dir between runs.
func buildBenchIndex(b *testing.B) string {
	path := filepath.Join(os.TempDir(), "hearth-bench-feed-1m-v2.sqlite")
	ctx := context.Background()
	if _, err := os.Stat(path); err == nil {
		ix, err := index.Open(ctx, path, index.Options{})
		if err == nil {
			c, err := ix.Count(ctx)
			ix.Close()
			if err == nil && c.Posts == benchPosts {
				return path
			}
		}
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
	}
	began := time.Now()
	ix, err := index.Open(ctx, path, index.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	revs := make([]int, benchAuthors)
	var batch []index.Event
	seq := int64(0)
	flush := func() {
		if _, err := ix.Apply(ctx, "bench", batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for n := 0; n < benchPosts; n += benchPostsPerCommit {
		a := rng.IntN(benchAuthors)
		revs[a]++
		c := &index.Commit{DID: benchAuthor(a), Rev: fmt.Sprintf("3l%011d", revs[a])}
		for k := range benchPostsPerCommit {
			c.Ops = append(c.Ops, index.Op{Action: index.ActionCreate, Collection: index.CollectionPost, RKey: fmt.Sprintf("3p%06d%05d", revs[a], k),
				CID: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", Record: &index.Post{Text: "benchmark post", Langs: []string{"en"}}})
		}
		seq++
		batch = append(batch, index.Event{Seq: seq, Commit: c})
		if len(batch) == 500 {
			flush()
		}
	}
	follow := func(viewer string, n int) {
		c := &index.Commit{DID: viewer, Rev: "3l00000000001"}
		for k, a := range rng.Perm(benchAuthors)[:n] {
			c.Ops = append(c.Ops, index.Op{Action: index.ActionCreate, Collection: index.CollectionFollow, RKey: fmt.Sprintf("3f%011d", k),
				CID: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", Record: &index.Follow{Subject: benchAuthor(a)}})
		}
		seq++
		batch = append(batch, index.Event{Seq: seq, Commit: c})
	}
	for v := range benchViewers {
		follow(benchViewer(v), 100)
	}
	for v := range benchHeavyViewers {
		follow(benchViewer(benchViewers+v), 1000)
	}
	flush()
	b.Logf("built %d-post index in %s", benchPosts, time.Since(began).Round(time.Millisecond))
	return path
}

// BenchmarkGetFeedSkeleton measures getFeedSkeleton over HTTP (127.0.0.1) with 32
// concurrent clients against a 1,000,000-post index. Run with -benchtime=1x. The
// following scenarios send the requester's service-auth token, as the AppView does.
func BenchmarkGetFeedSkeleton(b *testing.B) {
	path := buildBenchIndex(b)
	ctx := context.Background()
	dir := identity.NewMockDirectory()
	keys := make([]atcrypto.PrivateKey, benchViewers+benchHeavyViewers)
	cfg := feedgen.DefaultConfig()
	cfg.Hostname = "feeds.example.com"
	lxm := syntax.NSID("app.bsky.feed.getFeedSkeleton")
	for i := range keys {
		key, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			b.Fatal(err)
		}
		pub, _ := key.PublicKey()
		did := syntax.DID(benchViewer(i))
		dir.Insert(identity.Identity{DID: did, Handle: syntax.HandleInvalid, Keys: map[string]identity.VerificationMethod{
			"atproto": {Type: "Multikey", PublicKeyMultibase: pub.Multibase()},
		}})
		keys[i] = key
	}
	cfg.IndexPath = path
	cfg.Ingest.FirehoseURL = "ws://127.0.0.1:1"
	cfg.Directory = dir
	svc, err := feedgen.New(ctx, cfg, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * benchClients}}
	recent, following := svc.Config().FeedURI("recent"), svc.Config().FeedURI("following")
	// A PDS mints a new token for every getFeed it forwards (a random jti, a short exp),
	// so every request carries a token this service has not seen; they are minted before
	// the clock starts.
	token := func(i int) string {
		t, err := auth.SignServiceAuth(syntax.DID(benchViewer(i)), cfg.ServiceDID(), time.Hour, &lxm, keys[i])
		if err != nil {
			b.Fatal(err)
		}
		return t
	}

	type request struct {
		feed, cursor, token string
		// path, when set, is requested instead of getFeedSkeleton.
		path string
	}
	scenarios := []struct {
		name string
		gen  func(rng *rand.Rand) request
	}{
		// The harness's floor: the same clients and server on a handler that does nothing.
		{"floor/_health", func(*rand.Rand) request { return request{path: "/xrpc/_health"} }},
		{"recent/first-page", func(*rand.Rand) request { return request{feed: recent} }},
		{"recent/first-page+token", func(rng *rand.Rand) request {
			return request{feed: recent, token: token(rng.IntN(benchViewers))}
		}},
		{"recent/random-page", func(rng *rand.Rand) request {
			return request{feed: recent, cursor: rank.EncodeCursor(1 + rng.Int64N(benchPosts))}
		}},
		{"following-100/random-page", func(rng *rand.Rand) request {
			r := request{feed: following, token: token(rng.IntN(benchViewers))}
			if rng.IntN(2) == 0 {
				r.cursor = rank.EncodeCursor(1 + rng.Int64N(benchPosts))
			}
			return r
		}},
		{"following-1000/random-page", func(rng *rand.Rand) request {
			r := request{feed: following, token: token(benchViewers + rng.IntN(benchHeavyViewers))}
			if rng.IntN(2) == 0 {
				r.cursor = rank.EncodeCursor(1 + rng.Int64N(benchPosts))
			}
			return r
		}},
	}
	runScenario := func(b *testing.B, gen func(rng *rand.Rand) request, rate float64) {
		for b.Loop() {
			b.StopTimer()
			reqs := make([]request, benchRequests)
			rng := rand.New(rand.NewPCG(uint64(len(b.Name())), 9))
			for i := range reqs {
				reqs[i] = gen(rng)
			}
			b.StartTimer()
			lat := make([]time.Duration, benchRequests)
			var wg sync.WaitGroup
			var failed sync.Once
			began, cpu := time.Now(), processCPU()
			for c := range benchClients {
				wg.Go(func() {
					for i := c; i < benchRequests; i += benchClients {
						r := reqs[i]
						q := url.Values{"feed": {r.feed}, "limit": {"50"}}
						if r.cursor != "" {
							q.Set("cursor", r.cursor)
						}
						target := srv.URL + "/xrpc/app.bsky.feed.getFeedSkeleton?" + q.Encode()
						if r.path != "" {
							target = srv.URL + r.path
						}
						req, _ := http.NewRequest(http.MethodGet, target, nil)
						if r.token != "" {
							req.Header.Set("Authorization", "Bearer "+r.token)
						}
						t0 := time.Now()
						if rate > 0 {
							due := began.Add(time.Duration(float64(i) / rate * float64(time.Second)))
							time.Sleep(time.Until(due))
							t0 = due
						}
						res, err := client.Do(req)
						if err == nil {
							io.Copy(io.Discard, res.Body)
							res.Body.Close()
						}
						lat[i] = time.Since(t0)
						if err != nil || res.StatusCode != http.StatusOK {
							failed.Do(func() { b.Errorf("request failed: %v %v", err, res) })
						}
					}
				})
			}
			wg.Wait()
			took, cpu := time.Since(began), processCPU()-cpu
			slices.Sort(lat)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			b.ReportMetric(float64(len(lat))/took.Seconds(), "req/s")
			// Client and server together: both run in this process.
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/req")
		}
	}
	// Closed loop: 32 clients each send their next request as soon as the last is
	// answered, so the server is saturated and latency is mostly queueing (32 /
	// throughput). Open loop: the same clients send at a fixed total rate, each request
	// timed from when it was due (so a late answer also delays the next), as an AppView
	// calls a feed generator: latency at a load, not at saturation.
	rate := 1000.0
	if v := os.Getenv("HEARTH_BENCH_FEED_RATE"); v != "" {
		if _, err := fmt.Sscan(v, &rate); err != nil || rate <= 0 {
			b.Fatalf("HEARTH_BENCH_FEED_RATE=%q: a positive number of requests a second", v)
		}
	}
	for _, mode := range []struct {
		name string
		rate float64 // requests a second in all; 0: closed loop
	}{{"closed", 0}, {fmt.Sprintf("open-%g", rate), rate}} {
		for _, sc := range scenarios {
			b.Run(mode.name+"/"+sc.name, func(b *testing.B) {
				runScenario(b, sc.gen, mode.rate)
			})
		}
	}
}
