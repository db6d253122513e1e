package pds_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/stretchr/testify/require"
)

// adminCase is one call of an admin method and the answer it must get.
type adminCase struct {
	name    string
	method  string // GET or POST
	nsid    string
	params  url.Values
	body    any
	token   string // "admin", a user token or ""
	status  int
	errName string // "" for 200
}

func (e *env) runAdminCases(t *testing.T, cases []adminCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.nsid, c.params, c.body, c.token)
			if c.errName == "" {
				requireOK(t, r)
				return
			}
			requireXRPCError(t, r, c.status, c.errName)
		})
	}
}

// TestAdminAuth: every admin method wants the admin password; a user's token or a wrong
// password is refused before anything is looked at.
func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	methods := map[string]string{
		"com.atproto.admin.getAccountInfo": "GET", "com.atproto.admin.getAccountInfos": "GET", "com.atproto.admin.searchAccounts": "GET",
		"com.atproto.admin.updateAccountEmail": "POST", "com.atproto.admin.updateAccountPassword": "POST", "com.atproto.admin.sendEmail": "POST",
		"com.atproto.admin.getInviteCodes": "GET", "com.atproto.admin.disableInviteCodes": "POST", "com.atproto.admin.enableAccountInvites": "POST",
		"com.atproto.admin.disableAccountInvites": "POST", "com.atproto.admin.updateSubjectStatus": "POST", "com.atproto.admin.getSubjectStatus": "GET",
		"social.hearth.admin.getModerationLog": "GET",
	}
	for nsid, method := range methods {
		var body any
		if method == "POST" {
			body = map[string]any{"did": alice.DID}
		}
		for _, tok := range []string{"", alice.Access} {
			requireXRPCError(t, e.do(method, nsid, url.Values{"did": {alice.DID}}, body, tok), 401, "AuthenticationRequired")
		}
		req, err := http.NewRequest(method, e.http.URL+"/xrpc/"+nsid+"?did="+alice.DID, nil)
		require.NoError(t, err)
		req.SetBasicAuth("admin", "wrong")
		res, err := e.client.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, 401, res.StatusCode, nsid)
	}
}

// TestAdminAccounts: getAccountInfo(s), searchAccounts (by email or handle prefix,
// paged), updateAccountEmail, updateAccountPassword (ends sessions as resetPassword
// does) and sendEmail (through the mailer, here the data dir's outbox), each with its
// errors.
func TestAdminAccounts(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.createAccount("alice"), e.createAccount("bob")
	carol := e.createAccount("carol")
	r := e.post("com.atproto.server.createAccount", map[string]any{"handle": "nomail.test", "password": "pw-nomail"}, "")
	requireOK(t, r)
	noMail := r.Str("did")
	e.net.Client.CreateRecord(t, alice, "app.bsky.feed.post", post("hello"))

	r = e.get("com.atproto.admin.getAccountInfo", url.Values{"did": {alice.DID}}, "admin")
	requireOK(t, r)
	require.Equal(t, alice.DID, r.Str("did"))
	require.Equal(t, "alice.test", r.Str("handle"))
	require.Equal(t, "alice@example.com", r.Str("email"))
	require.Equal(t, "active", r.Str("status"))
	_, err := syntax.ParseDatetime(r.Str("indexedAt"))
	require.NoError(t, err, r.Str("indexedAt"))
	require.Equal(t, false, r.JSON["invitesDisabled"])
	require.Equal(t, []any{}, r.JSON["invites"])
	st := r.JSON["storage"].(map[string]any)
	require.Greater(t, st["repoBytes"].(float64), float64(100))
	require.Equal(t, float64(0), st["blobBytes"])

	r = e.get("com.atproto.admin.getAccountInfos", url.Values{"dids": {bob.DID, alice.DID, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}}, "admin")
	requireOK(t, r)
	infos := r.JSON["infos"].([]any)
	require.Len(t, infos, 2, "unknown DIDs are left out")

	search := func(params url.Values) (dids []string, cursor string) {
		t.Helper()
		r := e.get("com.atproto.admin.searchAccounts", params, "admin")
		requireOK(t, r)
		for _, a := range r.JSON["accounts"].([]any) {
			dids = append(dids, a.(map[string]any)["did"].(string))
		}
		return dids, r.Str("cursor")
	}
	got, _ := search(url.Values{"email": {"ALI"}})
	require.Equal(t, []string{alice.DID}, got)
	got, _ = search(url.Values{"term": {"bo"}})
	require.Equal(t, []string{bob.DID}, got, "handle prefix")
	got, _ = search(url.Values{"term": {"carol@"}})
	require.Equal(t, []string{carol.DID}, got, "email prefix")
	got, _ = search(url.Values{"email": {"%"}})
	require.Empty(t, got, "no pattern characters")
	all, cursor := search(url.Values{})
	require.Len(t, all, 4)
	require.Empty(t, cursor)
	page1, cursor := search(url.Values{"limit": {"3"}})
	require.Len(t, page1, 3)
	require.NotEmpty(t, cursor)
	page2, cursor := search(url.Values{"limit": {"3"}, "cursor": {cursor}})
	require.Equal(t, all, append(page1, page2...))
	require.Empty(t, cursor)

	// Email: by handle or DID; the new address starts unconfirmed.
	requireOK(t, e.post("com.atproto.admin.updateAccountEmail", map[string]any{"account": "alice.test", "email": "Alice2@Example.com"}, "admin"))
	r = e.get("com.atproto.admin.getAccountInfo", url.Values{"did": {alice.DID}}, "admin")
	require.Equal(t, "alice2@example.com", r.Str("email"))
	requireOK(t, e.post("com.atproto.admin.updateAccountEmail", map[string]any{"account": alice.DID, "email": "alice3@example.com"}, "admin"))

	// Password: the old one, the sessions and the access tokens issued before all end.
	time.Sleep(1100 * time.Millisecond) // tokens issued in the second of the change stay valid
	requireOK(t, e.post("com.atproto.admin.updateAccountPassword", map[string]any{"did": bob.DID, "password": "new-bob-pw"}, "admin"))
	requireXRPCError(t, e.login("bob.test", bob.Password, ""), 401, "AuthenticationRequired")
	requireXRPCError(t, e.post("com.atproto.server.refreshSession", nil, bob.Refresh), 401, "ExpiredToken")
	requireXRPCError(t, e.get("com.atproto.server.getSession", nil, bob.Access), 401, "ExpiredToken")
	requireOK(t, e.login("bob.test", "new-bob-pw", ""))

	// sendEmail goes through the mailer.
	r = e.post("com.atproto.admin.sendEmail", map[string]any{"recipientDid": carol.DID, "senderDid": e.cfg.ServerDID(),
		"content": "Your account is over its storage quota.", "subject": "About your account"}, "admin")
	requireOK(t, r)
	require.Equal(t, true, r.JSON["sent"])
	msgs, err := mail.ReadOutbox(pds.OutboxPath(e.cfg.DataDir))
	require.NoError(t, err)
	var found bool
	for _, m := range msgs {
		if m.To == "carol@example.com" && m.Purpose == mail.PurposeAdminMessage {
			found = true
			require.Equal(t, "About your account", m.Subject)
			require.Contains(t, m.Body, "over its storage quota")
			require.Contains(t, m.Body, e.cfg.PublicURL)
		}
	}
	require.True(t, found, "the mail is in the outbox")

	unknown := "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	mailTo := func(did string, mutate func(map[string]any)) map[string]any {
		b := map[string]any{"recipientDid": did, "senderDid": e.cfg.ServerDID(), "content": "hi"}
		if mutate != nil {
			mutate(b)
		}
		return b
	}
	G, P := http.MethodGet, http.MethodPost
	e.runAdminCases(t, []adminCase{
		{"info: bad did", G, "com.atproto.admin.getAccountInfo", url.Values{"did": {"nope"}}, nil, "admin", 400, "InvalidRequest"},
		{"info: unknown did", G, "com.atproto.admin.getAccountInfo", url.Values{"did": {unknown}}, nil, "admin", 400, "NotFound"},
		{"infos: no dids", G, "com.atproto.admin.getAccountInfos", nil, nil, "admin", 400, "InvalidRequest"},
		{"infos: bad did", G, "com.atproto.admin.getAccountInfos", url.Values{"dids": {alice.DID, "x"}}, nil, "admin", 400, "InvalidRequest"},
		{"infos: too many", G, "com.atproto.admin.getAccountInfos", url.Values{"dids": strings.Split(strings.Repeat(alice.DID+",", 101), ",")[:101]}, nil, "admin", 400, "InvalidRequest"},
		{"search: bad cursor", G, "com.atproto.admin.searchAccounts", url.Values{"cursor": {"x"}}, nil, "admin", 400, "InvalidRequest"},
		{"search: bad limit", G, "com.atproto.admin.searchAccounts", url.Values{"limit": {"0"}}, nil, "admin", 400, "InvalidRequest"},
		{"search: limit too big", G, "com.atproto.admin.searchAccounts", url.Values{"limit": {"101"}}, nil, "admin", 400, "InvalidRequest"},
		{"email: taken", P, "com.atproto.admin.updateAccountEmail", nil, map[string]any{"account": alice.DID, "email": "bob@example.com"}, "admin", 400, "InvalidRequest"},
		{"email: invalid", P, "com.atproto.admin.updateAccountEmail", nil, map[string]any{"account": alice.DID, "email": "not an address"}, "admin", 400, "InvalidRequest"},
		{"email: unknown account", P, "com.atproto.admin.updateAccountEmail", nil, map[string]any{"account": "nobody.test", "email": "x@example.com"}, "admin", 400, "InvalidRequest"},
		{"email: bad identifier", P, "com.atproto.admin.updateAccountEmail", nil, map[string]any{"account": "", "email": "x@example.com"}, "admin", 400, "InvalidRequest"},
		{"email: not JSON", P, "com.atproto.admin.updateAccountEmail", nil, []byte("{"), "admin", 400, "InvalidRequest"},
		{"password: empty", P, "com.atproto.admin.updateAccountPassword", nil, map[string]any{"did": alice.DID, "password": ""}, "admin", 400, "InvalidRequest"},
		{"password: too long", P, "com.atproto.admin.updateAccountPassword", nil, map[string]any{"did": alice.DID, "password": strings.Repeat("x", 257)}, "admin", 400, "InvalidRequest"},
		{"password: unknown did", P, "com.atproto.admin.updateAccountPassword", nil, map[string]any{"did": unknown, "password": "x"}, "admin", 400, "AccountNotFound"},
		{"password: bad did", P, "com.atproto.admin.updateAccountPassword", nil, map[string]any{"did": "bob", "password": "x"}, "admin", 400, "InvalidRequest"},
		{"mail: unknown recipient", P, "com.atproto.admin.sendEmail", nil, mailTo(unknown, nil), "admin", 400, "InvalidRequest"},
		{"mail: bad recipient", P, "com.atproto.admin.sendEmail", nil, mailTo("carol", nil), "admin", 400, "InvalidRequest"},
		{"mail: no address", P, "com.atproto.admin.sendEmail", nil, mailTo(noMail, nil), "admin", 400, "InvalidRequest"},
		{"mail: no content", P, "com.atproto.admin.sendEmail", nil, mailTo(carol.DID, func(b map[string]any) { b["content"] = " " }), "admin", 400, "InvalidRequest"},
		{"mail: no sender", P, "com.atproto.admin.sendEmail", nil, mailTo(carol.DID, func(b map[string]any) { delete(b, "senderDid") }), "admin", 400, "InvalidRequest"},
		{"mail: header in subject", P, "com.atproto.admin.sendEmail", nil, mailTo(carol.DID, func(b map[string]any) { b["subject"] = "hi\r\nBcc: x@example.com" }), "admin", 400, "InvalidRequest"},
	})
}

// TestAdminInvites: getInviteCodes (newest or most used first, paged), disableInviteCodes
// (by code and by account; not the admin's), enable/disableAccountInvites (no new codes
// for the account, its codes still work) and getAccountInfo's invites and invitedBy.
func TestAdminInvites(t *testing.T) {
	e := newEnv(t, func(c *pds.Config) { c.InviteRequired = true })
	code := func(uses int, forAccount string) string {
		t.Helper()
		body := map[string]any{"useCount": uses}
		if forAccount != "" {
			body["forAccount"] = forAccount
		}
		r := e.post("com.atproto.server.createInviteCode", body, "admin")
		requireOK(t, r)
		return r.Str("code")
	}
	signUp := func(name, code string) *resp {
		return e.post("com.atproto.server.createAccount", map[string]any{"handle": name + ".test", "password": "pw", "email": name + "@example.com", "inviteCode": code}, "")
	}
	shared := code(2, "")
	r := signUp("alice", shared)
	requireOK(t, r)
	alice := r.Str("did")
	requireOK(t, signUp("bob", shared))
	alicesCode := code(1, alice)
	spare := code(5, "")

	r = e.get("com.atproto.admin.getAccountInfo", url.Values{"did": {alice}}, "admin")
	requireOK(t, r)
	require.Equal(t, shared, r.JSON["invitedBy"].(map[string]any)["code"])
	invites := r.JSON["invites"].([]any)
	require.Len(t, invites, 1)
	require.Equal(t, alicesCode, invites[0].(map[string]any)["code"])
	require.Equal(t, float64(1), invites[0].(map[string]any)["available"])

	list := func(params url.Values) (codes []string, cursor string) {
		t.Helper()
		r := e.get("com.atproto.admin.getInviteCodes", params, "admin")
		requireOK(t, r)
		for _, c := range r.JSON["codes"].([]any) {
			codes = append(codes, c.(map[string]any)["code"].(string))
		}
		return codes, r.Str("cursor")
	}
	all, _ := list(nil)
	require.ElementsMatch(t, []string{shared, alicesCode, spare}, all)
	byUse, _ := list(url.Values{"sort": {"usage"}})
	require.Equal(t, shared, byUse[0], "the most used code first")
	for _, sort := range []string{"recent", "usage"} {
		var paged []string
		cursor := ""
		for i := 0; i < 5; i++ {
			p := url.Values{"sort": {sort}, "limit": {"1"}}
			if cursor != "" {
				p.Set("cursor", cursor)
			}
			page, next := list(p)
			paged = append(paged, page...)
			if cursor = next; cursor == "" || len(page) == 0 {
				break
			}
		}
		want, _ := list(url.Values{"sort": {sort}})
		require.Equal(t, want, paged, sort)
	}

	// Disabling codes: by code, and every code of an account.
	requireOK(t, e.post("com.atproto.admin.disableInviteCodes", map[string]any{"codes": []string{spare}}, "admin"))
	requireXRPCError(t, signUp("carol", spare), 400, "InvalidInviteCode")

	// Account invites off: no new codes for alice; hers still works.
	requireOK(t, e.post("com.atproto.admin.disableAccountInvites", map[string]any{"account": alice, "note": "spam invites"}, "admin"))
	r = e.get("com.atproto.admin.getAccountInfo", url.Values{"did": {alice}}, "admin")
	require.Equal(t, true, r.JSON["invitesDisabled"])
	require.Equal(t, "spam invites", r.Str("inviteNote"))
	requireXRPCError(t, e.post("com.atproto.server.createInviteCode", map[string]any{"useCount": 1, "forAccount": alice}, "admin"), 400, "InvalidRequest")
	requireXRPCError(t, e.post("com.atproto.server.createInviteCodes", map[string]any{"useCount": 1, "forAccounts": []string{alice}}, "admin"), 400, "InvalidRequest")
	requireOK(t, signUp("dave", alicesCode))
	requireOK(t, e.post("com.atproto.admin.enableAccountInvites", map[string]any{"account": alice}, "admin"))
	second := code(1, alice)
	requireOK(t, e.post("com.atproto.admin.disableInviteCodes", map[string]any{"accounts": []string{alice}}, "admin"))
	requireXRPCError(t, signUp("erin", second), 400, "InvalidInviteCode")
	r = e.get("com.atproto.admin.getAccountInfo", url.Values{"did": {alice}}, "admin")
	for _, c := range r.JSON["invites"].([]any) {
		require.Equal(t, true, c.(map[string]any)["disabled"])
	}

	unknown := "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	G, P := http.MethodGet, http.MethodPost
	e.runAdminCases(t, []adminCase{
		{"list: unknown sort", G, "com.atproto.admin.getInviteCodes", url.Values{"sort": {"alphabetical"}}, nil, "admin", 400, "InvalidRequest"},
		{"list: malformed cursor", G, "com.atproto.admin.getInviteCodes", url.Values{"cursor": {"nope"}}, nil, "admin", 400, "InvalidRequest"},
		{"list: limit too big", G, "com.atproto.admin.getInviteCodes", url.Values{"limit": {"501"}}, nil, "admin", 400, "InvalidRequest"},
		{"disable: admin codes", P, "com.atproto.admin.disableInviteCodes", nil, map[string]any{"accounts": []string{"admin"}}, "admin", 400, "InvalidRequest"},
		{"disable: nothing named", P, "com.atproto.admin.disableInviteCodes", nil, map[string]any{}, "admin", 0, ""},
		{"account invites: unknown", P, "com.atproto.admin.disableAccountInvites", nil, map[string]any{"account": unknown}, "admin", 400, "AccountNotFound"},
		{"account invites: bad did", P, "com.atproto.admin.enableAccountInvites", nil, map[string]any{"account": "alice"}, "admin", 400, "InvalidRequest"},
	})
}

// TestAdminQuota: over the repo quota, record writes answer StorageQuotaExceeded and
// deletes still work (and make room again); over the blob quota, uploads are refused,
// and the same bytes again count once; getAccountInfo shows the figures.
func TestAdminQuota(t *testing.T) {
	e := newEnv(t, func(c *pds.Config) {
		c.QuotaRepoBytes = 4000
		c.QuotaBlobBytes = 3000
	})
	alice := e.createAccount("alice")
	var rkeys []string
	refused := false
	for i := 0; i < 200 && !refused; i++ {
		r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "app.bsky.feed.post",
			"record": post(strings.Repeat("words ", 30) + strconv.Itoa(i))}, alice.Access)
		if r.Status != 200 {
			requireXRPCError(t, r, 400, "StorageQuotaExceeded")
			require.Contains(t, r.Str("message"), "quota 4000 bytes")
			refused = true
			break
		}
		uri := r.Str("uri")
		rkeys = append(rkeys, uri[strings.LastIndex(uri, "/")+1:])
	}
	require.True(t, refused, "the quota was never reached")
	require.Greater(t, len(rkeys), 5)
	requireXRPCError(t, e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": []any{
		map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": post(strings.Repeat("more ", 60))},
	}}, alice.Access), 400, "StorageQuotaExceeded")
	r := e.get("com.atproto.admin.getAccountInfo", url.Values{"did": {alice.DID}}, "admin")
	st := r.JSON["storage"].(map[string]any)
	require.Equal(t, float64(4000), st["repoQuota"])
	require.LessOrEqual(t, st["repoBytes"].(float64), float64(4000+100), "past the quota by a commit block's growth at most")
	// Deletes work and make room for the next post.
	for _, rk := range rkeys[:3] {
		e.deletePost(alice, rk)
	}
	e.createPost(alice, post(strings.Repeat("words ", 30)))

	png1, png2 := testPNG(t, 1), testPNG(t, 2)
	for len(png1) < 2000 { // two of these do not fit in 3000 bytes
		png1 = append(png1, 0)
		png2 = append(png2, 0)
	}
	ref := e.uploadOK(alice.Access, png1)
	requireXRPCError(t, e.upload(alice.Access, "image/png", png2), 400, "StorageQuotaExceeded")
	require.Equal(t, ref, e.uploadOK(alice.Access, png1), "the same bytes again count once")
	r = e.get("com.atproto.admin.getAccountInfo", url.Values{"did": {alice.DID}}, "admin")
	require.Equal(t, float64(len(png1)), r.JSON["storage"].(map[string]any)["blobBytes"])

	// Another account has its own quota.
	bob := e.createAccount("bob")
	e.uploadOK(bob.Access, png2)
	e.createPost(bob, post("bob has room"))

	cfg := pds.DefaultConfig()
	cfg.PLCURL = "http://127.0.0.1:1"
	cfg.QuotaBlobBytes = -1
	require.ErrorContains(t, cfg.Validate(), "quota")
}
