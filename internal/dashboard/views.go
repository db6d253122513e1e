package dashboard

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/store"
)

type invitesPage struct {
	page
	Codes   []pds.InviteCodeView
	Created string
}

func (d *Dashboard) renderInvites(w http.ResponseWriter, r *http.Request, s *session, created string) {
	codes, err := d.cfg.Admin.AdminInviteCodes(r.Context(), 100)
	if err != nil {
		d.failed(w, "Listing invite codes", err)
		return
	}
	d.render(w, http.StatusOK, "invites", invitesPage{page: d.signedIn("Invite codes", s, "invites"), Codes: codes, Created: created})
}

func (d *Dashboard) handleInvites(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderInvites(w, r, s, "")
}

func (d *Dashboard) handleCreateInvite(w http.ResponseWriter, r *http.Request, s *session) {
	uses, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("uses")))
	if err != nil {
		d.renderError(w, http.StatusBadRequest, "Uses must be a number.")
		return
	}
	code, err := d.cfg.Admin.AdminCreateInviteCode(r.Context(), strings.TrimSpace(r.PostForm.Get("for")), uses)
	if err != nil {
		d.failed(w, "Creating an invite code", err)
		return
	}
	d.renderInvites(w, r, s, code)
}

func (d *Dashboard) handleDisableInvite(w http.ResponseWriter, r *http.Request, _ *session) {
	code := strings.TrimSpace(r.PostForm.Get("code"))
	if code == "" {
		d.renderError(w, http.StatusBadRequest, "Which code? None was given.")
		return
	}
	if err := d.cfg.Admin.AdminDisableInviteCodes(r.Context(), []string{code}); err != nil {
		d.failed(w, "Disabling the invite code", err)
		return
	}
	http.Redirect(w, r, "/invites", http.StatusSeeOther)
}

const logPerPage = 100

type moderationPage struct {
	page
	DID     string
	Entries []store.ModerationEntry
	Next    string
}

// handleModeration shows the moderation log (what social.hearth.admin.getModerationLog
// serves), newest first, optionally of one account.
func (d *Dashboard) handleModeration(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	did := strings.TrimSpace(q.Get("did"))
	if did != "" {
		if _, err := syntax.ParseDID(did); err != nil {
			d.renderError(w, http.StatusBadRequest, "That is not a DID.")
			return
		}
	}
	var before int64
	if c := q.Get("before"); c != "" {
		var err error
		if before, err = strconv.ParseInt(c, 10, 64); err != nil || before <= 0 {
			d.renderError(w, http.StatusBadRequest, "That page link is not valid.")
			return
		}
	}
	entries, err := d.cfg.Admin.AdminModerationLog(r.Context(), did, before, logPerPage)
	if err != nil {
		d.failed(w, "Reading the moderation log", err)
		return
	}
	data := moderationPage{page: d.signedIn("Moderation log", s, "moderation"), DID: did, Entries: entries}
	if len(entries) == logPerPage {
		data.Next = "/moderation?before=" + strconv.FormatInt(entries[len(entries)-1].ID, 10)
		if did != "" {
			data.Next += "&did=" + did
		}
	}
	d.render(w, http.StatusOK, "moderation", data)
}

type healthPage struct {
	page
	Charts  []chart
	Metrics bool
	Every   time.Duration
}

func (d *Dashboard) handleHealth(w http.ResponseWriter, r *http.Request, s *session) {
	d.render(w, http.StatusOK, "health", healthPage{page: d.signedIn("Server health", s, "health"),
		Charts: d.samples.charts(time.Now()), Metrics: d.cfg.Metrics != nil, Every: d.cfg.SampleEvery})
}

type firehosePage struct {
	page
	Firehose pds.FirehoseStatus
	Relays   []RelayRow
	RelayErr string
	// NoRelayStatus: this build cannot ask relays; Crawlers are the configured ones.
	NoRelayStatus bool
	Crawlers      []string
	// Crawled holds the answers to a crawl request just made (relay -> "" or the error).
	Crawled map[string]string
}

func (d *Dashboard) handleFirehose(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderFirehose(w, r, s, nil)
}

// handleRequestCrawl asks the relays to crawl this PDS again (a relay that fell out of
// sync, or never heard of it), then shows the page with their answers.
func (d *Dashboard) handleRequestCrawl(w http.ResponseWriter, r *http.Request, s *session) {
	if d.cfg.Relays == nil {
		d.renderError(w, http.StatusNotFound, "No relay is configured.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	crawled := d.cfg.Relays.RequestCrawl(ctx)
	d.log.Info("dashboard: asked the relays to crawl", "by", d.cfg.Admin.AdminActor(r), "relays", len(crawled))
	d.renderFirehose(w, r, s, crawled)
}

func (d *Dashboard) renderFirehose(w http.ResponseWriter, r *http.Request, s *session, crawled map[string]string) {
	fh, err := d.cfg.Admin.Firehose(r.Context())
	if err != nil {
		d.failed(w, "Reading the firehose status", err)
		return
	}
	data := firehosePage{page: d.signedIn("Firehose and relays", s, "firehose"), Firehose: fh, Crawlers: d.cfg.Crawlers, NoRelayStatus: d.cfg.Relays == nil, Crawled: crawled}
	if d.cfg.Relays != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if data.Relays, err = d.cfg.Relays.RelayStatus(ctx); err != nil {
			data.RelayErr = err.Error()
		}
	}
	d.render(w, http.StatusOK, "firehose", data)
}

const feedPerPage = 30

type feedPage struct {
	page
	NoFeed bool
	Posts  []feedgen.ExplainedPost
	Next   string
}

// handleFeed lists the newest posts the feed generator indexed with the verdict and
// evidence explainPost gives for each.
func (d *Dashboard) handleFeed(w http.ResponseWriter, r *http.Request, s *session) {
	data := feedPage{page: d.signedIn("Feed explorer", s, "feed"), NoFeed: d.cfg.Feed == nil}
	if d.cfg.Feed != nil {
		before := int64(index.NoCursor)
		if c := r.URL.Query().Get("before"); c != "" {
			var err error
			if before, err = strconv.ParseInt(c, 10, 64); err != nil || before <= 0 {
				d.renderError(w, http.StatusBadRequest, "That page link is not valid.")
				return
			}
		}
		posts, err := d.cfg.Feed.RecentExplained(r.Context(), before, feedPerPage)
		if err != nil {
			d.failed(w, "Reading the feed index", err)
			return
		}
		data.Posts = posts
		if len(posts) == feedPerPage {
			data.Next = "/feed?before=" + strconv.FormatInt(posts[len(posts)-1].Post.Seq, 10)
		}
	}
	d.render(w, http.StatusOK, "feed", data)
}
