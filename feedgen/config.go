package feedgen

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen/ingest"
	"github.com/hearth-social/hearth/feedgen/rank"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is everything the feed generator needs. cmd/hearth maps flags onto it.
type Config struct {
	// Hostname is the public host name; the service DID is did:web:HOSTNAME.
	Hostname string
	// PublicURL is the URL apps and AppViews reach the service at (the #bsky_fg
	// endpoint in did.json); default https://HOSTNAME.
	PublicURL string
	// PublisherDID is the account whose app.bsky.feed.generator records name the feeds
	// (feed URIs are at://PUBLISHER/app.bsky.feed.generator/NAME); default the service DID.
	PublisherDID string
	// Publishers are further accounts whose app.bsky.feed.generator records naming this
	// service's DID make a feed live as soon as the record is on the firehose (no restart).
	Publishers []string
	// FirehosePublishers allows every account on the firehose to publish so (set by
	// `hearth serve`, whose firehose is its own PDS: those accounts are local).
	FirehosePublishers bool
	// IndexPath is the SQLite file of the index.
	IndexPath string
	// Ingest configures the firehose client (FirehoseURL is required).
	Ingest ingest.Config
	// PLCURL is the PLC directory used to resolve authors and requesters.
	PLCURL string
	// AllowPrivate lets the service fetch from loopback and private addresses taken from
	// DID documents (development only).
	AllowPrivate bool
	// LocalPDS maps the endpoint of a PDS in the same process (as DID documents name it)
	// to the address the service reaches it on directly, e.g. "http://localhost:2583" ->
	// "http://127.0.0.1:2583" inside `hearth serve`. Blobs of that PDS's accounts are
	// fetched there without the public-address guard; every other endpoint keeps it.
	LocalPDS map[string]string
	// Directory overrides identity resolution (tests); nil builds one from PLCURL.
	Directory identity.Directory
	// Synchronous is the index's SQLite synchronous level (default NORMAL).
	Synchronous string
	// LabelerPath is the labeler's SQLite file (default labeler.sqlite beside IndexPath).
	// The labeler signs as the service DID.
	LabelerPath string
	// Classify tunes the classification worker; AllowPrivate also governs its blob
	// fetches.
	Classify ClassifyConfig
	// Rank holds the ranking constants (the zero value means rank.DefaultParams()).
	Rank rank.Params
	// Metrics is where the feed generator registers its Prometheus collectors (ingest
	// position and lag, classifications); nil: a private registry nobody scrapes.
	Metrics prometheus.Registerer
}

// DefaultConfig returns local defaults; IndexPath and Ingest.FirehoseURL need setting.
func DefaultConfig() Config {
	return Config{
		Hostname: "localhost",
		Ingest:   ingest.DefaultConfig(),
		PLCURL:   identity.DefaultPLCURL,
		Rank:     rank.DefaultParams(),
	}
}

// ServiceDID is the feed generator's DID.
func (c Config) ServiceDID() string { return ServiceDIDFor(c.Hostname, c.PublicURL) }

// ServiceDIDFor is the DID of a feed generator at hostname reached at publicURL:
// did:web:HOSTNAME, except a local one (hostname localhost), whose DID names the port
// its listener has (did:web:localhost%3A2584), because did:web resolvers map
// did:web:localhost to port 80 and an AppView on the same machine must find the
// generator where it listens. The PDS keeps did:web:localhost.
func ServiceDIDFor(hostname, publicURL string) string {
	if hostname == "localhost" {
		if u, err := url.Parse(publicURL); err == nil && u.Port() != "" {
			return "did:web:localhost%3A" + u.Port()
		}
	}
	return "did:web:" + hostname
}

// FeedURI is the AT-URI of the feed with the given short name.
func (c Config) FeedURI(name string) string {
	return "at://" + c.PublisherDID + "/app.bsky.feed.generator/" + name
}

// Validate checks the configuration and fills derived defaults. Errors name the field.
func (c *Config) Validate() error {
	c.Hostname = strings.ToLower(strings.TrimSpace(c.Hostname))
	if _, err := syntax.ParseHandle(c.Hostname); err != nil && c.Hostname != "localhost" {
		return fmt.Errorf("feed hostname %q is not a valid host name", c.Hostname)
	}
	if c.PublicURL == "" {
		c.PublicURL = "https://" + c.Hostname
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("feed public URL %q must be an http(s) URL", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.PublisherDID == "" {
		c.PublisherDID = c.ServiceDID()
	}
	if _, err := syntax.ParseDID(c.PublisherDID); err != nil {
		return fmt.Errorf("feed publisher DID %q: %w", c.PublisherDID, err)
	}
	if c.IndexPath == "" {
		return fmt.Errorf("feed index path must be set")
	}
	if c.LabelerPath == "" {
		c.LabelerPath = filepath.Join(filepath.Dir(c.IndexPath), "labeler.sqlite")
	}
	if c.Rank == (rank.Params{}) {
		c.Rank = rank.DefaultParams()
	}
	if err := c.Rank.Validate(); err != nil {
		return fmt.Errorf("feed ranking parameters: %w", err)
	}
	c.Classify.defaults()
	if c.Ingest.FirehoseURL == "" {
		return fmt.Errorf("feed firehose URL must be set")
	}
	if _, err := ingest.ServiceKey(c.Ingest.FirehoseURL); err != nil {
		return fmt.Errorf("feed firehose URL: %w", err)
	}
	if c.Directory == nil && c.PLCURL == "" {
		return fmt.Errorf("feed PLC URL must be set")
	}
	return nil
}
