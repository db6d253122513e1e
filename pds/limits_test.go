package pds_test

import (
	"fmt"
	"strings"
	"testing"
)

// A commit whose blocks exceed the firehose's 2,000,000-byte limit is refused with a 400
// naming the limit (it used to be a bare 500), and nothing is written.
func TestApplyWritesCommitSizeLimit(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	big := strings.Repeat("x", 280_000)
	var writes []map[string]any
	for i := 0; i < 8; i++ {
		writes = append(writes, map[string]any{
			"$type":      "com.atproto.repo.applyWrites#create",
			"collection": "com.example.blob",
			"value":      map[string]any{"$type": "com.example.blob", "data": fmt.Sprint(i) + big},
		})
	}
	head, _ := e.latest(alice.DID)
	r := e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": writes}, alice.Access)
	requireXRPCError(t, r, 400, "InvalidRequest")
	if !strings.Contains(r.str("message"), "2000000") && !strings.Contains(r.str("message"), "2,000,000") {
		t.Fatalf("message does not name the limit: %s", r.Body)
	}
	after, _ := e.latest(alice.DID)
	if after != head {
		t.Fatalf("head moved from %s to %s after a refused commit", head, after)
	}
	// Half of it is fine.
	r = e.post("com.atproto.repo.applyWrites", map[string]any{"repo": alice.DID, "writes": writes[:4]}, alice.Access)
	requireOK(t, r)
}

// Records nested deeper than 32 levels are refused as invalid input, not a crash.
func TestRecordNestingDepth(t *testing.T) {
	e := newEnv(t)
	alice := e.createAccount("alice")
	nest := func(depth int) map[string]any {
		v := map[string]any{"leaf": true}
		for i := 1; i < depth; i++ {
			v = map[string]any{"child": v}
		}
		v["$type"] = "com.example.deep"
		return v
	}
	requireOK(t, e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.deep", "record": nest(32)}, alice.Access))
	for _, depth := range []int{33, 500, 5000} {
		r := e.post("com.atproto.repo.createRecord", map[string]any{"repo": alice.DID, "collection": "com.example.deep", "record": nest(depth)}, alice.Access)
		requireXRPCError(t, r, 400, "InvalidRequest")
	}
}
