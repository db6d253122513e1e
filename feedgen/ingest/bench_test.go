package ingest

import (
	"context"
	"encoding/gob"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/repo"
)

// Benchmark sizes: 500 accounts x 200 commits = 100,000 #commit events, plus an
// #identity and an #account event per account.
const (
	benchAccounts          = 500
	benchCommitsPerAccount = 200
)

// benchFirehose is a generated firehose: real signed commits made with repo.Apply.
type benchFirehose struct {
	Idents []benchIdent
	Frames [][]byte
}

type benchIdent struct {
	DID       string
	Multibase string
}

var (
	benchOnce sync.Once
	benchData *benchFirehose
)

// loadBenchFirehose generates the firehose once and caches it in the temp dir, since
// signing 100,000 commits takes a while.
func loadBenchFirehose(b *testing.B) *benchFirehose {
	benchOnce.Do(func() {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("hearth-bench-firehose-v2-%dx%d.gob", benchAccounts, benchCommitsPerAccount))
		if f, err := os.Open(path); err == nil {
			var d benchFirehose
			if gob.NewDecoder(f).Decode(&d) == nil {
				benchData = &d
			}
			f.Close()
			if benchData != nil {
				return
			}
		}
		began := time.Now()
		benchData = generateBenchFirehose(b)
		b.Logf("generated %d frames in %s", len(benchData.Frames), time.Since(began).Round(time.Millisecond))
		tmp := path + ".tmp"
		if f, err := os.Create(tmp); err == nil {
			err = gob.NewEncoder(f).Encode(benchData)
			f.Close()
			if err == nil {
				os.Rename(tmp, path)
			}
		}
	})
	return benchData
}

func generateBenchFirehose(b *testing.B) *benchFirehose {
	repos := make([]*testRepo, benchAccounts)
	perRepo := make([][]*comatproto.SyncSubscribeRepos_Commit, benchAccounts)
	var wg sync.WaitGroup
	workers := 2
	for w := range workers {
		wg.Go(func() {
			for i := w; i < benchAccounts; i += workers {
				r := newTestRepo(b, fmt.Sprintf("bench-%d", i), nil)
				repos[i] = r
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				var posts, likes []string
				for c := range benchCommitsPerAccount {
					rkey := syntax.NewTIDFromInteger(uint64(1_000_000 + c)).String()
					var w repo.Write
					switch n := rng.IntN(100); {
					case c == 0 || n < 2:
						name := fmt.Sprintf("bench account %d, version %d", i, c)
						w = repo.Write{Action: repo.ActionPut, Collection: index.CollectionProfile, RKey: "self",
							Record: cborOf(b, &bsky.ActorProfile{LexiconTypeID: index.CollectionProfile, DisplayName: &name})}
					case n < 55 || len(posts) == 0:
						w = create(b, index.CollectionPost, rkey, postRec(fmt.Sprintf("post %d of account %d: the quick brown fox", c, i)))
						posts = append(posts, uriOf(r.did, index.CollectionPost, rkey))
					case n < 82:
						// Like someone's post: the target account's rkeys are predictable.
						target := testDID(fmt.Sprintf("bench-%d", rng.IntN(benchAccounts)))
						subject := uriOf(target, index.CollectionPost, syntax.NewTIDFromInteger(uint64(1_000_000+rng.IntN(c+1))).String())
						w = create(b, index.CollectionLike, rkey, likeRec(subject, "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"))
						likes = append(likes, rkey)
					case n < 85 && len(likes) > 0:
						k := rng.IntN(len(likes))
						w = del(index.CollectionLike, likes[k])
						likes = append(likes[:k], likes[k+1:]...)
					case n < 93:
						w = create(b, index.CollectionFollow, rkey, followRec(testDID(fmt.Sprintf("bench-%d", rng.IntN(benchAccounts)))))
					default:
						w = create(b, index.CollectionRepost, rkey, &bsky.FeedRepost{LexiconTypeID: index.CollectionRepost,
							Subject: &comatproto.RepoStrongRef{Uri: posts[rng.IntN(len(posts))], Cid: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}, CreatedAt: "2026-01-01T00:00:00Z"})
					}
					perRepo[i] = append(perRepo[i], r.commit(b, w))
				}
			}
		})
	}
	wg.Wait()

	d := &benchFirehose{}
	seq := int64(0)
	for _, r := range repos {
		id := r.identity(b)
		pub, _ := id.PublicKey()
		d.Idents = append(d.Idents, benchIdent{DID: r.did.String(), Multibase: pub.Multibase()})
		seq++
		handle := r.did.Identifier() + ".test"
		d.Frames = append(d.Frames, frame(b, firehose.TypeIdentity, &comatproto.SyncSubscribeRepos_Identity{Seq: seq, Did: r.did.String(), Handle: &handle, Time: "2026-01-01T00:00:00Z"}))
		seq++
		d.Frames = append(d.Frames, frame(b, firehose.TypeAccount, &comatproto.SyncSubscribeRepos_Account{Seq: seq, Did: r.did.String(), Active: true, Time: "2026-01-01T00:00:00Z"}))
	}
	// Interleave accounts as a busy firehose does.
	for c := range benchCommitsPerAccount {
		for i := range repos {
			seq++
			d.Frames = append(d.Frames, commitFrame(b, seq, perRepo[i][c]))
		}
	}
	return d
}

// BenchmarkIngest feeds the generated firehose (decoding included) through the
// pipeline into a fresh index, with and without verification. Run with -benchtime=1x.
func BenchmarkIngest(b *testing.B) {
	data := loadBenchFirehose(b)
	dir := identity.NewMockDirectory()
	for _, id := range data.Idents {
		dir.Insert(identity.Identity{DID: syntax.DID(id.DID), Handle: syntax.HandleInvalid, Keys: map[string]identity.VerificationMethod{
			"atproto": {Type: "Multikey", PublicKeyMultibase: id.Multibase},
		}})
	}
	for _, verify := range []bool{false, true} {
		b.Run(fmt.Sprintf("verify=%v", verify), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				ix, err := index.Open(context.Background(), filepath.Join(b.TempDir(), "feed.sqlite"), index.Options{})
				if err != nil {
					b.Fatal(err)
				}
				in, err := New(Config{FirehoseURL: "ws://127.0.0.1:1", SkipVerify: !verify}, ix, dir, quiet)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				began := time.Now()
				requireEOF(b, in.Consume(context.Background(), &sliceSource{frames: data.Frames}))
				took := time.Since(began)
				b.StopTimer()
				if in.Invalid() != 0 {
					b.Fatalf("%d events rejected", in.Invalid())
				}
				c, err := ix.Count(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(data.Frames))/took.Seconds(), "events/s")
				b.ReportMetric(float64(len(data.Frames)), "events")
				b.Logf("verify=%v: %d events in %s: %d posts, %d likes, %d follows, %d reposts, %d profiles",
					verify, len(data.Frames), took.Round(time.Millisecond), c.Posts, c.Likes, c.Follows, c.Reposts, c.Profiles)
				ix.Close()
				b.StartTimer()
			}
		})
	}
}
