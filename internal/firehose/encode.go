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
	var buf bytes.Buffer
	hdr := events.EventHeader{Op: events.EvtKindMessage, MsgType: t}
	if err := hdr.MarshalCBOR(&buf); err != nil {
		return nil, fmt.Errorf("encoding frame header: %w", err)
	}
	if err := body.MarshalCBOR(&buf); err != nil {
		return nil, fmt.Errorf("encoding %s body: %w", t, err)
	}
	return buf.Bytes(), nil
}

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
