package xrpc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteError(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		status  int
		errName string
		message string
	}{
		{"xrpc error", InvalidRequest("bad %s", "thing"), 400, "InvalidRequest", "bad thing"},
		{"wrapped xrpc error", errors.Join(errors.New("ctx"), Errorf(404, "RecordNotFound", "gone")), 404, "RecordNotFound", "gone"},
		{"internal error hides its cause", errors.New("disk on fire"), 500, "InternalServerError", "internal server error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, httptest.NewRequest("GET", "/xrpc/x", nil), nil, tc.err)
			require.Equal(t, tc.status, rec.Code)
			require.Contains(t, rec.Header().Get("Content-Type"), "application/json")
			var b Body
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &b))
			require.Equal(t, tc.errName, b.Error)
			require.Equal(t, tc.message, b.Message)
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	var v map[string]any
	rec := httptest.NewRecorder()
	err := DecodeJSON(rec, httptest.NewRequest("POST", "/", strings.NewReader(`{"a":1}`)), 100, &v)
	require.NoError(t, err)
	require.Equal(t, json.Number("1"), v["a"])

	err = DecodeJSON(rec, httptest.NewRequest("POST", "/", strings.NewReader(`{"a":`)), 100, &v)
	var xe *Error
	require.ErrorAs(t, err, &xe)
	require.Equal(t, 400, xe.Status)

	err = DecodeJSON(rec, httptest.NewRequest("POST", "/", strings.NewReader(`{"a":"`+strings.Repeat("x", 200)+`"}`)), 100, &v)
	require.ErrorAs(t, err, &xe)
	require.Equal(t, http.StatusRequestEntityTooLarge, xe.Status)
}

func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/xrpc/com.atproto.server.createSession":
			WriteJSON(w, 200, map[string]string{"did": "did:plc:abc", "handle": "a.test", "accessJwt": "tok"})
		case "/xrpc/com.atproto.repo.putRecord":
			if r.Header.Get("Authorization") != "Bearer tok" {
				WriteError(w, r, nil, Errorf(401, "AuthenticationRequired", "no"))
				return
			}
			WriteJSON(w, 200, map[string]string{"uri": "at://did:plc:abc/c/k", "cid": "bafy"})
		default:
			WriteError(w, r, nil, Errorf(501, "MethodNotImplemented", "nope"))
		}
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL + "/")
	require.NoError(t, err)
	ctx := context.Background()
	s, err := c.Login(ctx, "a.test", "pw")
	require.NoError(t, err)
	uri, cid, err := c.PutRecord(ctx, s, "c", "k", map[string]any{"x": 1})
	require.NoError(t, err)
	require.Equal(t, "at://did:plc:abc/c/k", uri)
	require.Equal(t, "bafy", cid)
	err = c.Query(ctx, "com.example.missing", "", nil, nil)
	var re *ResponseError
	require.ErrorAs(t, err, &re)
	require.Equal(t, 501, re.Status)
	require.Equal(t, "MethodNotImplemented", re.Name)
	_, err = NewClient("ftp://x")
	require.Error(t, err)
}
