package pds

import (
	"encoding/json"
	"net/http"
	"strconv"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/ipfs/go-cid"
)

// Record values are stored as DAG-CBOR and served as JSON. The conversion (decode to
// atdata, then encoding/json) was a third of listRecords' CPU, so the JSON of small
// records is cached by CID: a CID names one value forever, so an entry can never be
// stale, only evicted. Large records are converted on every read rather than cached.
const (
	recordJSONCacheEntries = 4096
	recordJSONCacheMaxSize = 2048 // bytes of JSON; ~1 MB for 4096 typical posts
)

type recordJSONCache struct {
	c *lru.Cache[string, json.RawMessage]
}

func newRecordJSONCache() *recordJSONCache {
	c, err := lru.New[string, json.RawMessage](recordJSONCacheEntries)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &recordJSONCache{c: c}
}

// get returns the JSON of the record value val whose CID is c. The returned slice is
// shared: callers must not modify it.
func (rc *recordJSONCache) get(c cid.Cid, val []byte) (json.RawMessage, error) {
	key := c.KeyString()
	if js, ok := rc.c.Get(key); ok {
		return js, nil
	}
	js, err := recordJSON(val)
	if err != nil {
		return nil, err
	}
	if len(js) <= recordJSONCacheMaxSize {
		rc.c.Add(key, js)
	}
	return js, nil
}

// listRecordsItem is one entry of a listRecords answer.
type listRecordsItem struct {
	URI   string
	CID   string
	Value json.RawMessage
}

// writeListRecords writes {"records":[{uri,cid,value}...],"cursor"} by hand: the values
// are JSON this server produced, and encoding/json would re-scan and compact every one
// of them (another fifth of the CPU of a listRecords call).
func writeListRecords(w http.ResponseWriter, items []listRecordsItem, cursor string) {
	n := 32 + len(cursor)
	for _, it := range items {
		n += 32 + len(it.URI) + len(it.CID) + len(it.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"records":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"uri":`...)
		b = appendJSONString(b, it.URI)
		b = append(b, `,"cid":`...)
		b = appendJSONString(b, it.CID)
		b = append(b, `,"value":`...)
		b = append(b, it.Value...)
		b = append(b, '}')
	}
	b = append(b, ']')
	if cursor != "" {
		b = append(b, `,"cursor":`...)
		b = appendJSONString(b, cursor)
	}
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// appendJSONString appends s as a JSON string. AT URIs, CIDs and record keys are
// printable ASCII without quotes or backslashes, so they are copied as they are; anything
// else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			js, _ := json.Marshal(s)
			return append(b, js...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
