package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/stretchr/testify/require"
)

// TestHandles: with VerifyHandles, a declared handle is kept only when its DNS record
// points back at the DID, and LookupHandle checks both directions. DNS answers come
// from an injected resolver; nothing leaves 127.0.0.1.
func TestHandles(t *testing.T) {
	alice := syntax.DID("did:plc:aliceaaaaaaaaaaaaaaaaaaa")
	bob := syntax.DID("did:plc:bobbbbbbbbbbbbbbbbbbbbbb")
	docs := map[syntax.DID]identity.DIDDocument{}
	for did, handle := range map[syntax.DID]string{alice: "alice.example.com", bob: "bob.example.com"} {
		doc, _ := testDoc(t, did, "https://pds.example.com")
		doc.AlsoKnownAs = []string{"at://" + handle}
		docs[did] = doc
	}
	plc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := docs[syntax.DID(strings.TrimPrefix(r.URL.Path, "/"))]
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(doc)
	}))
	defer plc.Close()
	// bob.example.com's record names alice: bob's handle does not verify.
	txt := map[string]string{"_atproto.alice.example.com.": "did=" + alice.String(), "_atproto.bob.example.com.": "did=" + alice.String()}
	dns := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return fakeTXT(t, txt), nil
	}}
	// Well-known fallbacks go to a guarded client that cannot reach anything.
	dir := New(Config{PLCURL: plc.URL, VerifyHandles: true, DNS: dns, Timeout: 3 * time.Second})
	ctx := context.Background()

	ident, err := dir.LookupDID(ctx, alice)
	require.NoError(t, err)
	require.Equal(t, syntax.Handle("alice.example.com"), ident.Handle)
	ident, err = dir.LookupDID(ctx, bob)
	require.NoError(t, err)
	require.Equal(t, syntax.HandleInvalid, ident.Handle)

	ident, err = dir.LookupHandle(ctx, "ALICE.example.com")
	require.NoError(t, err)
	require.Equal(t, alice, ident.DID)
	_, err = dir.LookupHandle(ctx, "bob.example.com")
	require.ErrorIs(t, err, identity.ErrHandleMismatch)

	// Without VerifyHandles no DNS query is made and handles stay invalid.
	ident, err = New(Config{PLCURL: plc.URL, DNS: &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS expected")
	}}}).LookupDID(ctx, alice)
	require.NoError(t, err)
	require.Equal(t, syntax.HandleInvalid, ident.Handle)
}

// fakeTXT is one end of a pipe whose other end answers DNS queries (TCP framing, which
// the Go resolver uses on a stream connection) with the TXT records of txt; any other
// query gets an empty answer.
func fakeTXT(t *testing.T, txt map[string]string) net.Conn {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		server.SetDeadline(time.Now().Add(5 * time.Second))
		for range 4 {
			var l [2]byte
			if _, err := io.ReadFull(server, l[:]); err != nil {
				return
			}
			q := make([]byte, int(l[0])<<8|int(l[1]))
			if _, err := io.ReadFull(server, q); err != nil {
				return
			}
			ans, err := txtAnswer(q, txt)
			if err != nil {
				t.Errorf("fake DNS: %v", err)
				return
			}
			if _, err := server.Write(append([]byte{byte(len(ans) >> 8), byte(len(ans))}, ans...)); err != nil {
				return
			}
		}
	}()
	return client
}

func txtAnswer(q []byte, txt map[string]string) ([]byte, error) {
	if len(q) < 12 {
		return nil, errors.New("short query")
	}
	var name strings.Builder
	i := 12
	for i < len(q) && q[i] != 0 {
		n := int(q[i])
		if i+1+n > len(q) {
			return nil, errors.New("malformed name")
		}
		name.Write(q[i+1 : i+1+n])
		name.WriteByte('.')
		i += n + 1
	}
	if i+5 > len(q) {
		return nil, errors.New("malformed question")
	}
	qtype := int(q[i+1])<<8 | int(q[i+2])
	out := append([]byte{}, q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0)
	out = append(out, q[12:i+5]...)
	rec, ok := txt[strings.ToLower(name.String())]
	if qtype == 16 && ok {
		out[7] = 1
		out = append(out, 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, byte(len(rec)+1), byte(len(rec)))
		out = append(out, rec...)
	} else if !ok {
		out[3] = 0x83 // NXDOMAIN
	}
	return out, nil
}
