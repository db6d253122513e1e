package firehose

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/bluesky-social/indigo/events"
	cbg "github.com/whyrusleeping/cbor-gen"
)

// The server side of event streams (subscribeRepos, subscribeLabels) shares these.

// EncodeMessage encodes a message frame: the DAG-CBOR header {op: 1, t} then the body.
func EncodeMessage(t string, body cbg.CBORMarshaler) ([]byte, error) {
	return encodeMessage(t, body, 0)
}

// encodeMessage is EncodeMessage into a buffer of sizeHint bytes to start with: a
// frame whose size the caller can estimate is encoded without the buffer doubling its
// way up to it (that growth was a sixth of a default serve's allocations under load).
func encodeMessage(t string, body cbg.CBORMarshaler, sizeHint int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, sizeHint))
	hdr := events.EventHeader{Op: events.EvtKindMessage, MsgType: t}
	if err := hdr.MarshalCBOR(buf); err != nil {
		return nil, fmt.Errorf("encoding frame header: %w", err)
	}
	if err := body.MarshalCBOR(buf); err != nil {
		return nil, fmt.Errorf("encoding %s body: %w", t, err)
	}
	return compact(buf.Bytes()), nil
}

// compact returns b in a slice of its own length when the buffer's doubling left much
// spare capacity: frames are kept in memory (the sequencer's ring, the store's window of
// recent events), and the spare half of each buffer was half of that memory.
func compact(b []byte) []byte {
	if spare := cap(b) - len(b); spare <= len(b)/8 || spare <= maxSpare {
		return b
	}
	return bytes.Clone(b)
}

// maxSpare is the spare capacity a frame may keep rather than be copied (a size hint's
// error: a few hundred bytes).
const maxSpare = 512

// EncodeError encodes an error frame: {op: -1} then {error, message}.
func EncodeError(name, message string) ([]byte, error) {
	var buf bytes.Buffer
	hdr := events.EventHeader{Op: events.EvtKindErrorFrame}
	if err := hdr.MarshalCBOR(&buf); err != nil {
		return nil, err
	}
	body := events.ErrorFrame{Error: name, Message: message}
	if err := body.MarshalCBOR(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ErrBadCursor: a cursor parameter that is not a non-negative integer.
var ErrBadCursor = errors.New("cursor must be a non-negative integer")

// ParseCursor parses a stream's cursor parameter; "" means none (live only).
func ParseCursor(raw string) (*int64, error) {
	if raw == "" {
		return nil, nil
	}
	c, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || c < 0 {
		return nil, ErrBadCursor
	}
	return &c, nil
}
