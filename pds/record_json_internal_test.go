package pds

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// writeListRecords must answer byte for byte what encoding/json would, given values
// as recordJSON makes them (encoding/json output: compact, HTML characters escaped).
func TestWriteListRecordsMatchesEncodingJSON(t *testing.T) {
	type item struct {
		URI   string          `json:"uri"`
		CID   string          `json:"cid"`
		Value json.RawMessage `json:"value"`
	}
	type answer struct {
		Records []item `json:"records"`
		Cursor  string `json:"cursor,omitempty"`
	}
	for name, tc := range map[string]struct {
		items  []listRecordsItem
		cursor string
	}{
		"empty":     {items: []listRecordsItem{}},
		"one":       {items: []listRecordsItem{{"at://did:plc:abc/app.bsky.feed.post/3k", "bafyrei", json.RawMessage(`{"text":"hi \u003cb\u003e\u0026"}`)}}, cursor: "3k"},
		"two":       {items: []listRecordsItem{{"at://did:plc:a/c.x/1", "b1", json.RawMessage(`{}`)}, {"at://did:plc:a/c.x/2", "b2", json.RawMessage(`{"a":[1,2]}`)}}},
		"escapes":   {items: []listRecordsItem{{"at://did:web:a/c.x/\"q\"\\<&>", "b\u00e9", json.RawMessage(`{}`)}}, cursor: "\u2028"},
		"no cursor": {items: []listRecordsItem{{"at://did:plc:a/c.x/1", "b1", json.RawMessage(`null`)}}},
	} {
		t.Run(name, func(t *testing.T) {
			want := answer{Records: []item{}, Cursor: tc.cursor}
			for _, it := range tc.items {
				want.Records = append(want.Records, item(it))
			}
			wantJSON, err := json.Marshal(want)
			require.NoError(t, err)
			rec := httptest.NewRecorder()
			writeListRecords(rec, tc.items, tc.cursor)
			require.Equal(t, string(wantJSON), rec.Body.String())
			require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
		})
	}
}

// The JSON cache answers the value converted from CBOR, and does not keep large ones.
func TestRecordJSONCache(t *testing.T) {
	rc := newRecordJSONCache()
	small := []byte{0xa1, 0x64, 't', 'e', 'x', 't', 0x62, 'h', 'i'} // {"text": "hi"}
	c1, err := cid.Prefix{Version: 1, Codec: 0x71, MhType: 0x12, MhLength: -1}.Sum(small)
	require.NoError(t, err)
	js, err := rc.get(c1, small)
	require.NoError(t, err)
	require.JSONEq(t, `{"text":"hi"}`, string(js))
	require.Equal(t, 1, rc.c.Len())
	js, err = rc.get(c1, nil) // served from the cache: the bytes are not decoded again
	require.NoError(t, err)
	require.JSONEq(t, `{"text":"hi"}`, string(js))

	long := make([]byte, 0, 3000)
	long = append(long, 0xa1, 0x64, 't', 'e', 'x', 't', 0x79, 0x0b, 0xb8) // text: 3000-byte string
	for range 3000 {
		long = append(long, 'x')
	}
	c2, err := cid.Prefix{Version: 1, Codec: 0x71, MhType: 0x12, MhLength: -1}.Sum(long)
	require.NoError(t, err)
	_, err = rc.get(c2, long)
	require.NoError(t, err)
	require.Equal(t, 1, rc.c.Len(), "a record over the size limit is not cached")

	_, err = rc.get(c2, []byte{0xff})
	require.Error(t, err, "bad CBOR is an error, not a cached value")
}
