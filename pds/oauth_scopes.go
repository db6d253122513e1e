package pds

import (
	"context"
	"net/http"
	"strings"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/auth"
)

// OAuth scope enforcement (atproto.com/specs/permission). Legacy sessions and app
// passwords are not affected: every check here passes for a caller without an OAuth
// grant. For OAuth callers, serveXRPC calls checkOAuthRoute before the handler; record
// writes are checked per collection and action in the handlers (requireRepoScope), and
// proxied calls per audience and method (checkOAuthProxy).

func scopeMissing(format string, args ...any) error {
	return xrpc.Errorf(http.StatusForbidden, "ScopeMissingError", format, args...)
}

// accountMethods are the PDS's own methods an OAuth token may call only with a granular
// account:/identity: permission; holding it also lets requireFullAccess pass for the
// call, as the permission is exactly what the method needs.
var accountMethods = map[string]struct {
	resource, attr, action string
}{
	"com.atproto.identity.updateHandle":                 {"identity", "handle", ""},
	"com.atproto.identity.requestPlcOperationSignature": {"identity", "*", ""},
	"com.atproto.identity.signPlcOperation":             {"identity", "*", ""},
	"com.atproto.identity.submitPlcOperation":           {"identity", "*", ""},
	"com.atproto.identity.getRecommendedDidCredentials": {"identity", "*", ""},
	"com.atproto.server.requestEmailConfirmation":       {"account", "email", "manage"},
	"com.atproto.server.confirmEmail":                   {"account", "email", "manage"},
	"com.atproto.server.requestEmailUpdate":             {"account", "email", "manage"},
	"com.atproto.server.updateEmail":                    {"account", "email", "manage"},
	"com.atproto.repo.importRepo":                       {"account", "repo", "manage"},
}

// appViewMethods are served here but forwarded to the AppView by the reference PDS, so
// an OAuth token needs what a forwarded call needs: rpc:NSID?aud=<the AppView> (or
// transition:generic). refreshIdentity also takes no credentials at all for an account
// hosted here; a token names its caller for identities hosted elsewhere.
var appViewMethods = map[string]bool{
	"com.atproto.identity.refreshIdentity": true,
}

// Admin methods (com.atproto.admin.*, among them updateAccountHandle) take the admin's
// Basic credentials only: authenticate never reads a DPoP token for them, so no OAuth
// scope reaches them.

// recordWrites are checked in their handlers, where the collections are known.
var recordWrites = map[string]bool{
	"com.atproto.repo.createRecord": true, "com.atproto.repo.putRecord": true,
	"com.atproto.repo.deleteRecord": true, "com.atproto.repo.applyWrites": true,
}

// atprotoOnly are the methods the bare atproto scope allows (beyond public reads).
var atprotoOnly = map[string]bool{
	"com.atproto.server.getSession":         true,
	"com.atproto.server.checkAccountStatus": true,
	"com.atproto.repo.listMissingBlobs":     true,
}

// appViewAud is the aud rpc: permissions name for methods that belong to the default
// AppView (preferences, feeds, push), even when this PDS answers them itself.
func (s *Server) appViewAud() string {
	if s.cfg.AppViewDID == "" {
		return ""
	}
	return s.cfg.AppViewDID + "#bsky_appview"
}

// checkOAuthRoute enforces an OAuth caller's scope for a method served here.
func (s *Server) checkOAuthRoute(r *http.Request, nsid string, c *caller) error {
	if c == nil || c.OAuth == nil {
		return nil
	}
	p := c.OAuth.Perms
	switch {
	case atprotoOnly[nsid], recordWrites[nsid]:
		return nil
	case appViewMethods[nsid]:
		if !p.RPC(s.appViewAud(), nsid) {
			return scopeMissing("the token's scope does not include rpc:%s?aud=%s", nsid, s.appViewAud())
		}
		return nil
	case nsid == "com.atproto.repo.uploadBlob":
		mime := r.Header.Get("Content-Type")
		if mime == "" {
			mime = "application/octet-stream"
		}
		if !p.Blob(mime) {
			return scopeMissing("the token's scope does not allow uploading %s (blob:)", mime)
		}
		return nil
	case nsid == "com.atproto.server.getServiceAuth":
		aud, lxm := r.URL.Query().Get("aud"), r.URL.Query().Get("lxm")
		if lxm == "" || !s.rpcAllowed(p.RPC, aud, lxm) {
			return scopeMissing("the token's scope does not allow service auth for %s on %s (rpc:)", lxm, aud)
		}
		return nil
	}
	if m, ok := accountMethods[nsid]; ok {
		allowed := false
		if m.resource == "identity" {
			allowed = p.Identity(m.attr)
		} else {
			allowed = p.Account(m.attr, m.action)
		}
		if !allowed {
			return scopeMissing("the token's scope does not include %s:%s for %s", m.resource, m.attr, nsid)
		}
		c.Scope = auth.ScopeAccess // the permission is what requireFullAccess guards
		return nil
	}
	// Other methods: app.bsky ones count as calls to the AppView; com.atproto ones need
	// what an app password would have.
	if strings.HasPrefix(nsid, "com.atproto.") {
		if !p.Generic {
			return scopeMissing("%s needs the transition:generic scope", nsid)
		}
		return nil
	}
	if !p.RPC(s.appViewAud(), nsid) {
		return scopeMissing("the token's scope does not include rpc:%s", nsid)
	}
	return nil
}

// rpcAllowed checks an rpc: permission for aud, which may be a bare DID (then any
// service of that DID the permission names is accepted) or DID#service.
func (s *Server) rpcAllowed(allows func(aud, lxm string) bool, aud, lxm string) bool {
	if strings.Contains(aud, "#") {
		return allows(aud, lxm)
	}
	for _, svc := range []string{"bsky_appview", "bsky_chat", "atproto_labeler", "bsky_fg", "atproto_pds"} {
		if allows(aud+"#"+svc, lxm) {
			return true
		}
	}
	return allows(aud, lxm)
}

// checkOAuthProxy enforces rpc:<lxm>?aud=<service> for a forwarded call: aud is the
// atproto-proxy target, or the default AppView.
func (s *Server) checkOAuthProxy(c *caller, svcDID syntax.DID, svcID string, nsid syntax.NSID) error {
	if c == nil || c.OAuth == nil {
		return nil
	}
	aud := s.appViewAud()
	if svcDID != "" {
		aud = svcDID.String() + "#" + svcID
	}
	if !c.OAuth.Perms.RPC(aud, nsid.String()) {
		return scopeMissing("the token's scope does not include rpc:%s?aud=%s", nsid, aud)
	}
	return nil
}

// requireRepoScope checks that an OAuth caller may write records of collection with
// action (create, update, delete).
func requireRepoScope(ctx context.Context, collection syntax.NSID, action string) error {
	c := callerFrom(ctx)
	if c == nil || c.OAuth == nil {
		return nil
	}
	if !c.OAuth.Perms.Repo(collection.String(), action) {
		return scopeMissing("the token's scope does not include repo:%s?action=%s", collection, action)
	}
	return nil
}

// redactSession hides the email from OAuth callers without account:email or
// transition:email.
func redactSession(c *caller, out *comatproto.ServerGetSession_Output) {
	if c == nil || c.OAuth == nil || c.OAuth.Perms.Account("email", "read") {
		return
	}
	out.Email, out.EmailConfirmed, out.EmailAuthFactor = nil, nil, nil
}
