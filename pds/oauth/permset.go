package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Permission sets (atproto.com/specs/permission#permission-sets): an `include:NSID`
// scope stands for the permissions of the permission-set lexicon NSID, published and
// resolved as any lexicon (LexiconResolver: Hearth's resolver, internal/resolve). As in
// the reference authorization server, every include: of a pushed request must resolve
// (invalid_scope otherwise), the consent page lists what each set grants, and the
// tokens carry the expanded permissions instead of the include: (so the resource server
// enforces granular permissions only, and a session keeps what was consented to even if
// the set is republished). Parsing and checking the set's permissions is indigo's
// (lexicon.SchemaPermission.CheckSchema, auth.ParsePermissionString); the namespace
// rule (a set grants only resources under its own NSID's namespace) and inheritAud
// (an rpc: permission takes the include:'s aud) are applied here.

// LexiconResolver fetches a published lexicon schema.
type LexiconResolver interface {
	ResolveLexicon(ctx context.Context, nsid syntax.NSID) (*lexicon.SchemaFile, error)
}

// PermissionSet is a resolved permission-set lexicon.
type PermissionSet struct {
	NSID          string
	Title, Detail string
	perms         []lexicon.SchemaPermission
}

// Cache bounds: sets are small, and few distinct ones are in use.
const (
	permSetCacheSize = 1000
	permSetTTL       = time.Hour
	permSetErrTTL    = time.Minute
)

type permSetEntry struct {
	set     *PermissionSet
	err     error
	expires time.Time
}

// permSets resolves and caches permission sets (hashicorp/golang-lru for the bound;
// expiry is checked on read, so there is no cleanup goroutine to own).
type permSets struct {
	res   LexiconResolver
	now   func() time.Time
	cache *lru.Cache[string, permSetEntry]
	// mu serializes resolutions so concurrent requests for one set fetch it once.
	mu sync.Mutex
}

func newPermSets(res LexiconResolver, now func() time.Time) *permSets {
	c, _ := lru.New[string, permSetEntry](permSetCacheSize) // errors only for a size <= 0
	return &permSets{res: res, now: now, cache: c}
}

// errNoPermissionSets: the server has no lexicon resolver.
var errNoPermissionSets = errors.New("this server does not resolve permission sets")

// get resolves nsid's permission set, from the cache when fresh.
func (ps *permSets) get(ctx context.Context, nsid string) (*PermissionSet, error) {
	if ps == nil || ps.res == nil {
		return nil, errNoPermissionSets
	}
	if e, ok := ps.cache.Get(nsid); ok && ps.now().Before(e.expires) {
		return e.set, e.err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if e, ok := ps.cache.Get(nsid); ok && ps.now().Before(e.expires) {
		return e.set, e.err
	}
	set, err := ps.resolve(ctx, nsid)
	if errors.Is(err, context.Canceled) {
		return nil, err // the caller gave up: nothing learned about the set
	}
	ttl := permSetTTL
	if err != nil {
		ttl = permSetErrTTL
	}
	ps.cache.Add(nsid, permSetEntry{set: set, err: err, expires: ps.now().Add(ttl)})
	return set, err
}

func (ps *permSets) resolve(ctx context.Context, raw string) (*PermissionSet, error) {
	nsid, err := syntax.ParseNSID(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not an NSID", raw)
	}
	sf, err := ps.res.ResolveLexicon(ctx, nsid)
	if err != nil {
		return nil, fmt.Errorf("permission set %s could not be resolved: %w", nsid, err)
	}
	main, ok := sf.Defs["main"]
	if !ok {
		return nil, fmt.Errorf("lexicon %s has no main definition", nsid)
	}
	def, ok := main.Inner.(lexicon.SchemaPermissionSet)
	if !ok {
		return nil, fmt.Errorf("lexicon %s is not a permission set", nsid)
	}
	set := &PermissionSet{NSID: nsid.String()}
	if def.Title != nil {
		set.Title = *def.Title
	}
	if def.Detail != nil {
		set.Detail = *def.Detail
	}
	for _, p := range def.Permissions {
		// A permission that does not check grants nothing; the rest of the set stands.
		if p.CheckSchema() == nil {
			set.perms = append(set.perms, p)
		}
	}
	return set, nil
}

// expand returns the permission scopes an include: of set grants: its repo: and rpc:
// permissions whose collections and methods are under the set's namespace, an rpc:
// with inheritAud taking the include:'s aud (and dropped when there is none).
func (set *PermissionSet) expand(aud string) []string {
	ns := namespace(set.NSID)
	under := func(nsid string) bool {
		n := namespace(nsid)
		return nsid != "*" && (n == ns || strings.HasPrefix(n, ns+"."))
	}
	var out []string
	for _, sp := range set.perms {
		p := auth.Permission{Resource: sp.Resource, Collection: sp.Collection, Action: sp.Action, Endpoint: sp.LXM, Audience: sp.Audience}
		if sp.InheritAud {
			if aud == "" {
				continue
			}
			p.Audience = aud
		}
		names := p.Collection
		if p.Resource == "rpc" {
			names = p.Endpoint
		}
		if len(names) == 0 || !slicesAll(names, under) {
			continue
		}
		s := p.ScopeString()
		if _, err := auth.ParsePermissionString(s); err != nil || slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// namespace is an NSID without its name: com.example.feed.post -> com.example.feed.
func namespace(nsid string) string {
	if i := strings.LastIndexByte(nsid, '.'); i > 0 {
		return nsid[:i]
	}
	return nsid
}

func slicesAll(xs []string, f func(string) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

// includes lists the include: permissions of a scope string.
func includes(scope string) []*auth.Permission {
	var out []*auth.Permission
	for _, s := range strings.Fields(scope) {
		if !strings.HasPrefix(s, "include:") {
			continue
		}
		if p, err := auth.ParsePermissionString(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// checkIncludes resolves every include: of a requested scope (PAR).
func (p *Provider) checkIncludes(ctx context.Context, scope string) *Error {
	for _, inc := range includes(scope) {
		if _, err := p.sets.get(ctx, inc.NSID); err != nil {
			return oerr(http.StatusBadRequest, "invalid_scope", "include:%s: %v", inc.NSID, err)
		}
	}
	return nil
}

// expandScope replaces each include: of a granted scope with the permissions it stands
// for (issued tokens carry these).
func (p *Provider) expandScope(ctx context.Context, scope string) (string, error) {
	if len(includes(scope)) == 0 {
		return scope, nil
	}
	var out []string
	for _, s := range strings.Fields(scope) {
		if !strings.HasPrefix(s, "include:") {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
			continue
		}
		inc, err := auth.ParsePermissionString(s)
		if err != nil {
			continue // grants nothing
		}
		set, err := p.sets.get(ctx, inc.NSID)
		if err != nil {
			return "", err
		}
		for _, e := range set.expand(inc.Audience) {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return strings.Join(out, " "), nil
}

// Described is one requested permission in words; an include:'s items are what its
// set grants.
type Described struct {
	Text  string
	Items []string
}

// DescribeScope lists a requested scope's permissions in words (the consent page),
// each include: resolved to its set's title and the permissions it grants.
func (p *Provider) DescribeScope(ctx context.Context, scope string) []Described {
	var out []Described
	for _, s := range strings.Fields(scope) {
		inc, err := auth.ParsePermissionString(s)
		if !strings.HasPrefix(s, "include:") || err != nil {
			for _, d := range Describe(s) {
				out = append(out, Described{Text: d})
			}
			continue
		}
		set, err := p.sets.get(ctx, inc.NSID)
		if err != nil {
			out = append(out, Described{Text: "Permission set " + inc.NSID + " could not be resolved (grants nothing)"})
			continue
		}
		d := Described{Text: "Permission set " + set.NSID}
		if set.Title != "" {
			d.Text = set.Title + " (" + set.NSID + ")"
		}
		if set.Detail != "" {
			d.Text += ": " + set.Detail
		}
		for _, e := range set.expand(inc.Audience) {
			d.Items = append(d.Items, describePermission(e))
		}
		if len(d.Items) == 0 {
			d.Items = []string{"Nothing this server can grant"}
		}
		out = append(out, d)
	}
	return out
}
