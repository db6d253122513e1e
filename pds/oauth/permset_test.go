package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// fakeLexicons serves schema files from memory and counts resolutions.
type fakeLexicons struct {
	files map[string]string
	calls int
}

func (f *fakeLexicons) ResolveLexicon(_ context.Context, nsid syntax.NSID) (*lexicon.SchemaFile, error) {
	f.calls++
	raw, ok := f.files[nsid.String()]
	if !ok {
		return nil, errors.New("not published")
	}
	var sf lexicon.SchemaFile
	if err := json.Unmarshal([]byte(raw), &sf); err != nil {
		return nil, err
	}
	return &sf, sf.FinishParse()
}

const setJSON = `{"lexicon":1,"id":"com.example.auth","defs":{"main":{"type":"permission-set","title":"T","permissions":[
 {"type":"permission","resource":"repo","collection":["com.example.post"],"action":["create","delete"]},
 {"type":"permission","resource":"repo","collection":["com.example.deep.note"]},
 {"type":"permission","resource":"repo","collection":["com.examplex.post"]},
 {"type":"permission","resource":"repo","collection":["com.example.post","org.other.post"]},
 {"type":"permission","resource":"repo","collection":["com.example.bad"],"action":["publish"]},
 {"type":"permission","resource":"rpc","lxm":["com.example.get"],"inheritAud":true},
 {"type":"permission","resource":"rpc","lxm":["com.example.list"],"aud":"*"},
 {"type":"permission","resource":"rpc","lxm":["org.other.get"],"aud":"*"},
 {"type":"permission","resource":"identity","attr":"*"}
]}}}`

func TestPermissionSetExpand(t *testing.T) {
	res := &fakeLexicons{files: map[string]string{"com.example.auth": setJSON,
		"com.example.rec": `{"lexicon":1,"id":"com.example.rec","defs":{"main":{"type":"record","key":"tid","record":{"type":"object","properties":{}}}}}`}}
	now := time.Unix(1_800_000_000, 0)
	p := &Provider{sets: newPermSets(res, func() time.Time { return now })}
	ctx := context.Background()
	for _, tc := range []struct {
		scope, want string
	}{
		// Only what is under com.example (com.examplex is another namespace); an
		// unknown action, identity: and other namespaces are dropped.
		{"atproto include:com.example.auth", "atproto repo:com.example.post?action=create&action=delete repo:com.example.deep.note rpc:com.example.list?aud=%2A"},
		// inheritAud takes the include:'s aud.
		{"atproto include:com.example.auth?aud=did:web:svc.test%23x", "atproto repo:com.example.post?action=create&action=delete repo:com.example.deep.note rpc:com.example.get?aud=did%3Aweb%3Asvc.test%23x rpc:com.example.list?aud=%2A"},
		// Duplicates collapse; other scopes stay in order.
		{"atproto transition:email include:com.example.auth repo:com.example.deep.note", "atproto transition:email repo:com.example.post?action=create&action=delete repo:com.example.deep.note rpc:com.example.list?aud=%2A"},
		{"atproto transition:generic", "atproto transition:generic"},
	} {
		got, err := p.expandScope(ctx, tc.scope)
		if err != nil || got != tc.want {
			t.Errorf("expandScope(%q) = %q, %v\nwant %q", tc.scope, got, err, tc.want)
		}
	}
	if res.calls != 1 {
		t.Errorf("the set was resolved %d times, want once (cached)", res.calls)
	}
	for _, tc := range []struct{ scope, want string }{
		{"atproto include:com.example.rec", "is not a permission set"},
		{"atproto include:com.example.gone", "could not be resolved"},
	} {
		if err := p.checkIncludes(ctx, tc.scope); err == nil || err.Code != "invalid_scope" || !strings.Contains(err.Description, tc.want) {
			t.Errorf("checkIncludes(%q) = %v, want invalid_scope %q", tc.scope, err, tc.want)
		}
	}
	// Failures are cached briefly, successes for the TTL.
	calls := res.calls
	_ = p.checkIncludes(ctx, "atproto include:com.example.gone")
	if res.calls != calls {
		t.Errorf("a failed resolution was retried at once")
	}
	now = now.Add(permSetErrTTL + time.Second)
	_ = p.checkIncludes(ctx, "atproto include:com.example.gone")
	_ = p.checkIncludes(ctx, "atproto include:com.example.auth")
	if res.calls != calls+1 {
		t.Errorf("after the error TTL: %d resolutions, want %d (only the failed one again)", res.calls-calls, 1)
	}
	d := p.DescribeScope(ctx, "atproto include:com.example.auth")
	if len(d) != 2 || d[1].Text != "T (com.example.auth)" || !slices.Contains(d[1].Items, "Records (create, delete) of com.example.post") {
		t.Errorf("DescribeScope: %+v", d)
	}
	if none := (&Provider{sets: newPermSets(nil, time.Now)}).checkIncludes(ctx, "atproto include:com.example.auth"); none == nil {
		t.Errorf("a server without a lexicon resolver accepted include:")
	}
}
