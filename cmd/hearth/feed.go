package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/urfave/cli/v2"

	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/classify"
	"github.com/hearth-social/hearth/feedgen/rank"
	"github.com/hearth-social/hearth/internal/datadir"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds"
)

// The feed generator's flags shared by `hearth serve` and `hearth feed serve`.

func feedListenFlag() cli.Flag {
	return &cli.StringFlag{Name: "feed-listen", Value: "127.0.0.1:2584", Usage: "address the feed generator listens on", EnvVars: []string{"HEARTH_FEED_LISTEN"}}
}

func feedHostnameFlag() cli.Flag {
	return &cli.StringFlag{Name: "feed-hostname", Value: "localhost", Usage: "public host name of the feed generator (its DID is did:web:HOSTNAME)", EnvVars: []string{"HEARTH_FEED_HOSTNAME"}}
}

func feedPublishersFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "feed-publishers", Usage: "further accounts (DIDs) whose app.bsky.feed.generator records naming this feed generator make a feed live without a restart (under serve, every account of this PDS already may)", EnvVars: []string{"HEARTH_FEED_PUBLISHERS"}}
}

func feedAllowPrivateFlag() cli.Flag {
	return &cli.BoolFlag{Name: "feed-allow-private", Usage: "let DID documents (did:web hosts, PDS endpoints blobs are fetched from) point at loopback and private addresses (development only; the PDS inside `serve` is always reached directly)", EnvVars: []string{"HEARTH_FEED_ALLOW_PRIVATE"}}
}

func feedLabelNoAITrainingFlag() cli.Flag {
	return &cli.BoolFlag{Name: "label-no-ai-training", Usage: "the labeler puts the informational no-ai-training label on accounts whose AI usage declarations deny training", EnvVars: []string{"HEARTH_LABEL_NO_AI_TRAINING"}}
}

func feedC2PATrustListFlag() cli.Flag {
	return &cli.StringFlag{Name: "c2pa-trust-list", Usage: "PEM file of C2PA trust anchors (e.g. the C2PA or Content Authenticity trust list, downloaded by the operator), signing and time-stamping (TSA) roots in one file; without it C2PA signatures are checked but no signer is trusted, so intact manifests are reported unverifiable", EnvVars: []string{"HEARTH_C2PA_TRUST_LIST"}}
}

// loadTrustList reads --c2pa-trust-list; nil when it is unset.
func loadTrustList(cctx *cli.Context) (*classify.TrustList, error) {
	path := cctx.String("c2pa-trust-list")
	if path == "" {
		return nil, nil
	}
	tl, err := classify.LoadTrustList(path)
	if err != nil {
		return nil, fmt.Errorf("--c2pa-trust-list (HEARTH_C2PA_TRUST_LIST): %w", err)
	}
	return tl, nil
}

func feedFirehoseFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "feed-firehose", Usage: usage, EnvVars: []string{"HEARTH_FEED_FIREHOSE"}}
}

func feedPublisherFlag() cli.Flag {
	return &cli.StringFlag{Name: "feed-publisher-did", Usage: "DID of the account whose app.bsky.feed.generator records name the feeds (default: the feed generator's DID)", EnvVars: []string{"HEARTH_FEED_PUBLISHER_DID"}}
}

func noFeedgenFlag() cli.Flag {
	return &cli.BoolFlag{Name: "no-feedgen", Usage: "do not run the feed generator", EnvVars: []string{"HEARTH_NO_FEEDGEN"}}
}

func feedCommand() *cli.Command {
	return &cli.Command{
		Name:  "feed",
		Usage: "the feed generator: serve feeds from a firehose, publish feed records",
		Subcommands: []*cli.Command{
			{
				Name:  "serve",
				Usage: "run the feed generator alone against any firehose (a PDS or a relay)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "data-dir", Value: "./data", Usage: "where the feed index (feedgen.sqlite) lives", EnvVars: []string{"HEARTH_DATA_DIR"}},
					feedListenFlag(),
					feedHostnameFlag(),
					&cli.StringFlag{Name: "feed-public-url", Usage: "URL that reaches the feed generator (default https://HOSTNAME, or http://localhost:PORT for localhost)", EnvVars: []string{"HEARTH_FEED_PUBLIC_URL"}},
					feedFirehoseFlag("subscribeRepos URL or host to read, e.g. wss://bsky.network (required)"),
					&cli.StringFlag{Name: "feed-plc-url", Value: "https://plc.directory", Usage: "PLC directory for resolving authors and requesters", EnvVars: []string{"HEARTH_FEED_PLC_URL"}},
					feedPublisherFlag(),
					&cli.StringFlag{Name: "feed-backfill", Usage: "PDS URL to read every repository from (listRepos + getRepo) when the index is empty", EnvVars: []string{"HEARTH_FEED_BACKFILL"}},
					feedAllowPrivateFlag(),
					feedPublishersFlag(),
					feedLabelNoAITrainingFlag(), feedC2PATrustListFlag(),
					&cli.Float64Flag{Name: "feed-ai-share", Value: rank.DefaultParams().AIShare, Usage: "share of AI posts in the balanced and following-mix feeds (0..1)", EnvVars: []string{"HEARTH_FEED_AI_SHARE"}},
					&cli.BoolFlag{Name: "feed-skip-verify", Usage: "do not verify commit signatures and proofs (benchmarks, trusted sources only)", EnvVars: []string{"HEARTH_FEED_SKIP_VERIFY"}},
				},
				Action: runFeedServe,
			},
			{
				Name:  "publish",
				Usage: "write an app.bsky.feed.generator record so apps can find a feed",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "pds", Value: "http://localhost:2583", Usage: "URL of the publishing account's PDS", EnvVars: []string{"HEARTH_FEED_PDS"}},
					&cli.StringFlag{Name: "handle", Required: true, Usage: "handle (or DID) of the publishing account"},
					&cli.StringFlag{Name: "password", Required: true, Usage: "its password or an app password", EnvVars: []string{"HEARTH_FEED_PASSWORD"}},
					&cli.StringFlag{Name: "feed", Required: true, Usage: "short name of the feed (" + strings.Join(rank.Default().Names(), ", ") + ")"},
					&cli.StringFlag{Name: "display-name", Required: true, Usage: "name shown in apps (at most 24 characters)"},
					&cli.StringFlag{Name: "description", Usage: "description shown in apps (default: what the feed shows, for the feeds Hearth ships)"},
					&cli.PathFlag{Name: "avatar", Usage: "PNG or JPEG image shown as the feed's avatar (at most 1 MB)"},
					&cli.StringFlag{Name: "content-mode", Value: "unspecified", Usage: "how apps should show the feed: unspecified, or video (a video-only feed shown full screen)"},
					&cli.StringFlag{Name: "service-did", Usage: "DID of the feed generator (default did:web:FEED-HOSTNAME; for localhost did:web:localhost%3APORT, the port of --feed-listen)"},
					feedHostnameFlag(),
					feedListenFlag(),
				},
				Action: runFeedPublish,
			},
			{
				Name:      "explain",
				Usage:     "print why the feed generator classified a post as it did (social.hearth.feed.explainPost)",
				ArgsUsage: "AT-URI",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "feed-url", Value: "http://127.0.0.1:2584", Usage: "URL of the feed generator", EnvVars: []string{"HEARTH_FEED_URL"}},
					&cli.BoolFlag{Name: "json", Usage: "print the raw JSON output"},
				},
				Action: runFeedExplain,
			},
			{
				Name:      "eval",
				Usage:     "classify a labelled corpus (DIR/labels.json) and print precision, recall and the false-AI rate; fails below target",
				ArgsUsage: "DIR",
				Flags: []cli.Flag{
					feedC2PATrustListFlag(),
				},
				Action: runFeedEval,
			},
		},
	}
}

// feedPublicURL is the URL a feed generator bound to addr is reached at.
func feedPublicURL(hostname string, addr net.Addr) string {
	if hostname == "localhost" {
		_, port, _ := net.SplitHostPort(addr.String())
		return "http://localhost:" + port
	}
	return "https://" + hostname
}

// feedRunner is a feed generator started by a command.
type feedRunner struct {
	svc  *feedgen.Service
	addr net.Addr
}

// startFeed opens the service and listens; rt serves its HTTP, runs its ingestion,
// closes its labeler streams before the HTTP drain and its stores at the end.
func startFeed(ctx context.Context, cfg feedgen.Config, listen string, log *slog.Logger, rt *runtime) (*feedRunner, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("--feed-listen (HEARTH_FEED_LISTEN) %s: %w", listen, err)
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = feedPublicURL(cfg.Hostname, ln.Addr())
	}
	svc, err := feedgen.New(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	rt.closeLast("feed generator", svc.Close)
	rt.serveHTTP("feed generator", ln, svc.Handler())
	rt.stream("labeler", func(ctx context.Context) {
		if err := svc.Shutdown(ctx); err != nil {
			log.Warn("labeler stream shutdown", "err", err)
		}
	})
	rt.work("feed ingest", svc.Run)
	return &feedRunner{svc: svc, addr: ln.Addr()}, nil
}

// print writes the feed generator's URLs.
func (r *feedRunner) print(w io.Writer) {
	if r == nil {
		return
	}
	cfg := r.svc.Config()
	fmt.Fprintf(w, "  feed generator: http://%s (public URL %s, DID %s)\n", r.addr, cfg.PublicURL, cfg.ServiceDID())
	fmt.Fprintf(w, "  feed firehose:  %s\n", cfg.Ingest.FirehoseURL)
	fmt.Fprintf(w, "  feeds:          %s\n", strings.Join(r.svc.FeedURIs(), ", "))
	fmt.Fprintf(w, "  labeler:        %s (queryLabels, subscribeLabels and %s on the feed listener)\n", cfg.ServiceDID(), feedgen.ExplainNSID)
}

// startServeFeed runs the feed generator inside `hearth serve`, reading the local PDS's
// firehose on loopback (unless --feed-firehose says otherwise). It returns nil when
// --no-feedgen is set. When the default --feed-listen address is taken, the PDS runs on
// without it (the error is logged); an address given explicitly must work.
func startServeFeed(ctx context.Context, cctx *cli.Context, log *slog.Logger, pc pds.Config, pdsAddr net.Addr, rt *runtime) (*feedRunner, error) {
	if cctx.Bool("no-feedgen") {
		return nil, nil
	}
	host, port, _ := net.SplitHostPort(pdsAddr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	local := "http://" + net.JoinHostPort(host, port)
	cfg := feedgen.DefaultConfig()
	cfg.Hostname = cctx.String("feed-hostname")
	cfg.PublisherDID = cctx.String("feed-publisher-did")
	cfg.Publishers = cctx.StringSlice("feed-publishers")
	cfg.Classify.AccountLabels = cctx.Bool("label-no-ai-training")
	trust, err := loadTrustList(cctx)
	if err != nil {
		return nil, err
	}
	cfg.Classify.Trust = trust
	cfg.IndexPath = filepath.Join(pc.DataDir, "feedgen.sqlite")
	cfg.PLCURL = pc.PLCURL
	cfg.Metrics = pc.Metrics // serve's one registry
	// The co-hosted PDS is reached directly on its listener; any other private address
	// (another PDS on this network) needs the explicit flag.
	cfg.AllowPrivate = cctx.Bool("feed-allow-private")
	cfg.LocalPDS = map[string]string{strings.TrimRight(pc.PublicURL, "/"): local}
	cfg.Ingest.FirehoseURL = cctx.String("feed-firehose")
	if cfg.Ingest.FirehoseURL == "" {
		// The firehose is this PDS's own: its accounts may publish feeds here.
		cfg.FirehosePublishers = true
		cfg.Ingest.FirehoseURL = "ws://" + net.JoinHostPort(host, port) + "/xrpc/com.atproto.sync.subscribeRepos"
		cfg.Ingest.BackfillURL = local // an index started after the PDS catches up with it
		// Every event on this firehose was signed moments ago by this process's own PDS,
		// read back over loopback from its own listener: verifying those signatures and
		// MST proofs again redid the signer's work for each write (a tenth of the CPU of
		// a write under load). CAR hashes and commit roots are still checked.
		cfg.Ingest.SkipVerify = true
	}
	r, err := startFeed(ctx, cfg, cctx.String("feed-listen"), log, rt)
	var opErr *net.OpError
	if err != nil && errors.As(err, &opErr) && !cctx.IsSet("feed-listen") {
		log.Error("feed generator not started (set --feed-listen, or --no-feedgen)", "err", err)
		return nil, nil
	}
	return r, err
}

func runFeedServe(cctx *cli.Context) error {
	ctx := cctx.Context
	log, err := newLogger(cctx)
	if err != nil {
		return err
	}
	dataDir := cctx.String("data-dir")
	if dataDir == "" {
		return errors.New("--data-dir (HEARTH_DATA_DIR) must not be empty")
	}
	if err := datadir.Prepare(dataDir, log); err != nil {
		return fmt.Errorf("--data-dir (HEARTH_DATA_DIR) %s: %w", dataDir, err)
	}
	cfg := feedgen.DefaultConfig()
	cfg.Hostname = cctx.String("feed-hostname")
	cfg.PublicURL = cctx.String("feed-public-url")
	cfg.PublisherDID = cctx.String("feed-publisher-did")
	cfg.Publishers = cctx.StringSlice("feed-publishers")
	cfg.Classify.AccountLabels = cctx.Bool("label-no-ai-training")
	cfg.IndexPath = filepath.Join(dataDir, "feedgen.sqlite")
	cfg.PLCURL = strings.TrimRight(cctx.String("feed-plc-url"), "/")
	cfg.AllowPrivate = cctx.Bool("feed-allow-private")
	cfg.Rank.AIShare = cctx.Float64("feed-ai-share")
	cfg.Ingest.FirehoseURL = cctx.String("feed-firehose")
	cfg.Ingest.BackfillURL = cctx.String("feed-backfill")
	cfg.Ingest.SkipVerify = cctx.Bool("feed-skip-verify")
	if cfg.Ingest.FirehoseURL == "" {
		return errors.New("--feed-firehose (HEARTH_FEED_FIREHOSE) is required, e.g. ws://127.0.0.1:2583 or wss://bsky.network")
	}

	rt := newRuntime(log)
	defer rt.closeAll()
	r, err := startFeed(ctx, cfg, cctx.String("feed-listen"), log, rt)
	if err != nil {
		return err
	}
	out := cctx.App.Writer
	fmt.Fprintf(out, "Hearth %s feed generator\n", version)
	r.print(out)
	fmt.Fprintf(out, "  index:          %s\n", cfg.IndexPath)
	return rt.Run(ctx)
}

// feedDescriptions are the default descriptions of the feeds Hearth ships.
var feedDescriptions = map[string]string{
	"recent":              "Every post this feed generator has seen, newest first.",
	"following":           "Posts from the accounts you follow, newest first.",
	rank.FeedHuman:        "Posts with no known sign of AI generation, ranked. Provenance is read from C2PA, IPTC and generator metadata and from self-labels.",
	rank.FeedAI:           "Posts whose images or labels say they were made with generative AI, ranked, with the evidence.",
	rank.FeedBalanced:     "Mostly human work with a share of AI-made posts, ranked, each classified by its provenance.",
	rank.FeedFollowingMix: "Posts from the accounts you follow, human work and a share of AI-made posts, ranked.",
}

// maxAvatarBytes is the lexicon's limit for a feed generator's avatar.
const maxAvatarBytes = 1_000_000

// uploadAvatar uploads a PNG or JPEG for a feed generator record and returns its blob.
func uploadAvatar(ctx context.Context, client *xrpc.Client, session *xrpc.Session, path string) (json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--avatar: %w", err)
	}
	if len(data) > maxAvatarBytes {
		return nil, fmt.Errorf("--avatar %s: %d bytes, more than the %d a feed avatar may have", path, len(data), maxAvatarBytes)
	}
	mime := http.DetectContentType(data)
	if mime != "image/png" && mime != "image/jpeg" {
		return nil, fmt.Errorf("--avatar %s: a PNG or JPEG image is needed, not %s", path, mime)
	}
	var out struct {
		Blob json.RawMessage `json:"blob"`
	}
	if err := client.ProcedureBytes(ctx, "com.atproto.repo.uploadBlob", session.AccessJwt, mime, data, &out); err != nil {
		return nil, fmt.Errorf("uploading the avatar: %w", err)
	}
	return out.Blob, nil
}

func runFeedPublish(cctx *cli.Context) error {
	ctx, cancel := context.WithTimeout(cctx.Context, time.Minute)
	defer cancel()
	name := cctx.String("feed")
	if _, err := syntax.ParseRecordKey(name); err != nil {
		return fmt.Errorf("--feed %q is not a valid record key: %w", name, err)
	}
	if _, ok := rank.Default().Get(name); !ok {
		fmt.Fprintf(cctx.App.ErrWriter, "warning: this Hearth version serves no feed named %q (it serves %s)\n", name, strings.Join(rank.Default().Names(), ", "))
	}
	serviceDID := cctx.String("service-did")
	if serviceDID == "" {
		host := strings.ToLower(cctx.String("feed-hostname"))
		addr, err := net.ResolveTCPAddr("tcp", cctx.String("feed-listen"))
		if err != nil {
			return fmt.Errorf("--feed-listen (HEARTH_FEED_LISTEN) %q: %w", cctx.String("feed-listen"), err)
		}
		serviceDID = feedgen.ServiceDIDFor(host, feedPublicURL(host, addr))
	}
	if _, err := syntax.ParseDID(serviceDID); err != nil {
		return fmt.Errorf("--service-did %q: %w", serviceDID, err)
	}
	client, err := xrpc.NewClient(cctx.String("pds"))
	if err != nil {
		return fmt.Errorf("--pds: %w", err)
	}
	session, err := client.Login(ctx, cctx.String("handle"), cctx.String("password"))
	if err != nil {
		return err
	}
	record := map[string]any{
		"$type":       "app.bsky.feed.generator",
		"did":         serviceDID,
		"displayName": cctx.String("display-name"),
		"createdAt":   time.Now().UTC().Format(syntax.AtprotoDatetimeLayout),
		// The feed generator takes app.bsky.feed.sendInteractions ("see less", seen, click).
		"acceptsInteractions": true,
	}
	switch mode := cctx.String("content-mode"); mode {
	case "unspecified", "video":
		record["contentMode"] = "app.bsky.feed.defs#contentMode" + strings.ToUpper(mode[:1]) + mode[1:]
	default:
		return fmt.Errorf("--content-mode %q: want unspecified or video", mode)
	}
	if d := cctx.String("description"); d != "" {
		record["description"] = d
	} else if d, ok := feedDescriptions[name]; ok {
		record["description"] = d
	}
	if path := cctx.Path("avatar"); path != "" {
		blob, err := uploadAvatar(ctx, client, session, path)
		if err != nil {
			return err
		}
		record["avatar"] = blob
	}
	uri, cid, err := client.PutRecord(ctx, session, "app.bsky.feed.generator", name, record)
	if err != nil {
		return err
	}
	out := cctx.App.Writer
	fmt.Fprintf(out, "published %s (cid %s)\n", uri, cid)
	fmt.Fprintf(out, "it is live on a Hearth feed generator reachable as %[2]s that reads %[1]s's PDS (or lists it in --feed-publishers)\n", session.DID, serviceDID)
	return nil
}
