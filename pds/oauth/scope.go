package oauth

import (
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/auth"
)

// Permissions is a granted OAuth scope, parsed with indigo's atproto permission parser:
// the transitional scopes and the granular repo:, rpc:, blob:, account: and identity:
// permissions (permissions that do not parse grant nothing, as the spec says).
type Permissions struct {
	Generic bool // transition:generic: what an app password may do
	Chat    bool // transition:chat.bsky: chat.bsky.* through the proxy
	Email   bool // transition:email: the account's email address in getSession
	perms   []auth.Permission
}

// ParseScope parses a space-separated scope string.
func ParseScope(scope string) *Permissions {
	p := &Permissions{}
	for _, s := range strings.Fields(scope) {
		switch s {
		case "atproto":
		case "transition:generic":
			p.Generic = true
		case "transition:chat.bsky":
			p.Chat = true
		case "transition:email":
			p.Email = true
		default:
			if perm, err := auth.ParsePermissionString(s); err == nil {
				p.perms = append(p.perms, *perm)
			}
		}
	}
	return p
}

// Repo reports whether records of collection may be written with action (create,
// update or delete).
func (p *Permissions) Repo(collection, action string) bool {
	if p.Generic {
		return true
	}
	for _, perm := range p.perms {
		if perm.Resource != "repo" {
			continue
		}
		if !slices.Contains(perm.Collection, "*") && !slices.Contains(perm.Collection, collection) {
			continue
		}
		if len(perm.Action) == 0 || slices.Contains(perm.Action, action) {
			return true
		}
	}
	return false
}

// Blob reports whether a blob of MIME type mime may be uploaded.
func (p *Permissions) Blob(mime string) bool {
	if p.Generic {
		return true
	}
	mime = strings.ToLower(strings.TrimSpace(strings.SplitN(mime, ";", 2)[0]))
	for _, perm := range p.perms {
		if perm.Resource != "blob" {
			continue
		}
		for _, acc := range perm.Accept {
			if acc == "*/*" || acc == mime {
				return true
			}
			if typ, ok := strings.CutSuffix(acc, "/*"); ok && strings.HasPrefix(mime, typ+"/") {
				return true
			}
		}
	}
	return false
}

// RPC reports whether a call of method lxm may be made to (or, through the proxy,
// forwarded to) the service aud ("did:web:api.example#bsky_appview").
func (p *Permissions) RPC(aud, lxm string) bool {
	if strings.HasPrefix(lxm, "chat.bsky.") && p.Chat {
		return true
	}
	if p.Generic && !strings.HasPrefix(lxm, "chat.bsky.") {
		return true
	}
	for _, perm := range p.perms {
		if perm.Resource != "rpc" {
			continue
		}
		if perm.Audience != "*" && perm.Audience != aud {
			continue
		}
		if slices.Contains(perm.Endpoint, "*") || slices.Contains(perm.Endpoint, lxm) {
			return true
		}
	}
	return false
}

// Account reports whether an account attribute (email, repo) may be used with action
// (read or manage; manage implies read).
func (p *Permissions) Account(attr, action string) bool {
	if attr == "email" && action == "read" && p.Email {
		return true
	}
	for _, perm := range p.perms {
		if perm.Resource != "account" || perm.Attribute != attr {
			continue
		}
		if action == "read" || slices.Contains(perm.Action, "manage") {
			return true
		}
	}
	return false
}

// Identity reports whether an identity attribute (handle, or * for everything) may be
// changed.
func (p *Permissions) Identity(attr string) bool {
	for _, perm := range p.perms {
		if perm.Resource == "identity" && (perm.Attribute == "*" || perm.Attribute == attr) {
			return true
		}
	}
	return false
}

// Describe lists the permissions in words, for the consent page.
func Describe(scope string) []string {
	var out []string
	for _, s := range strings.Fields(scope) {
		switch s {
		case "atproto":
			out = append(out, "Know your account identifier (DID) and handle")
		case "transition:generic":
			out = append(out, "Act for you as an app password would: post, like, follow, upload media and read your preferences (not change your password, email or handle)")
		case "transition:chat.bsky":
			out = append(out, "Read and send your chat messages")
		case "transition:email":
			out = append(out, "See your email address")
		default:
			out = append(out, describePermission(s))
		}
	}
	return out
}

func describePermission(s string) string {
	perm, err := auth.ParsePermissionString(s)
	if err != nil {
		return "Unrecognised permission (grants nothing): " + s
	}
	switch perm.Resource {
	case "repo":
		acts := "create, update and delete"
		if len(perm.Action) > 0 {
			acts = strings.Join(perm.Action, ", ")
		}
		colls := strings.Join(perm.Collection, ", ")
		if slices.Contains(perm.Collection, "*") {
			colls = "any kind"
		}
		return "Records (" + acts + ") of " + colls
	case "blob":
		return "Upload files of type " + strings.Join(perm.Accept, ", ")
	case "rpc":
		aud := perm.Audience
		if aud == "*" {
			aud = "any service"
		}
		return "Call " + strings.Join(perm.Endpoint, ", ") + " on " + aud + " as you"
	case "account":
		act := "read"
		if slices.Contains(perm.Action, "manage") {
			act = "change"
		}
		return "Account: " + act + " your " + perm.Attribute
	case "identity":
		if perm.Attribute == "*" {
			return "Identity: change your handle and DID document"
		}
		return "Identity: change your " + perm.Attribute
	case "include":
		return "Permission set " + perm.NSID // tokens carry it expanded (permset.go)
	}
	return s
}
