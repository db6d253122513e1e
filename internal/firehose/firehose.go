// Package firehose is a client for com.atproto.sync.subscribeRepos: it dials a firehose,
// decodes its frames into typed events, verifies commits, and formats events as lines.
// `hearth firehose tail`, the tests and the feed generator's ingest use it.
package firehose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/internal/xrpc"
)

// Message types, as they appear in frame headers, and the type of error frames.
const (
	TypeCommit   = "#commit"
	TypeSync     = "#sync"
	TypeIdentity = "#identity"
	TypeAccount  = "#account"
	TypeInfo     = "#info"
	TypeError    = "error"
)

const (
	// MaxMessageSize bounds one websocket message.
	MaxMessageSize = 8 << 20
	// DefaultReadTimeout is how long Next waits for any frame (servers ping every 30s).
	DefaultReadTimeout = 90 * time.Second
	// subscribePath is the XRPC path of the subscription.
	subscribePath = "/xrpc/com.atproto.sync.subscribeRepos"
)

// ErrorFrame is the body of an error frame ({op: -1}).
type ErrorFrame struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

// Event is one decoded frame. Type says which field is set; a message of a type this
// client does not know has only Type set (the spec says to skip those).
type Event struct {
	Seq      int64
	Type     string
	Commit   *comatproto.SyncSubscribeRepos_Commit
	Sync     *comatproto.SyncSubscribeRepos_Sync
	Identity *comatproto.SyncSubscribeRepos_Identity
	Account  *comatproto.SyncSubscribeRepos_Account
	Info     *comatproto.SyncSubscribeRepos_Info
	Error    *ErrorFrame
}

// DID is the account the event is about ("" for #info and errors).
func (ev *Event) DID() string {
	switch {
	case ev.Commit != nil:
		return ev.Commit.Repo
	case ev.Sync != nil:
		return ev.Sync.Did
	case ev.Identity != nil:
		return ev.Identity.Did
	case ev.Account != nil:
		return ev.Account.Did
	}
	return ""
}

// Conn is a firehose subscription. Next must not be called concurrently; Close may be
// called from any goroutine.
type Conn struct {
	ws *websocket.Conn
	// buf holds the frame being decoded, reused from frame to frame (Decode copies what
	// it keeps); a frame read whole into a new slice each time was a tenth of a default
	// serve's allocations under load (the feed generator reads every commit).
	buf bytes.Buffer
	// ReadTimeout bounds the wait for each frame (DefaultReadTimeout unless changed
	// before the first Next).
	ReadTimeout time.Duration
}

// SubscribeURL turns a host or URL (ws, wss, http, https; with or without the XRPC path)
// into the subscribeRepos URL, setting cursor when given (a cursor already in the URL is
// kept otherwise).
func SubscribeURL(raw string, cursor *int64) (string, error) {
	if !strings.Contains(raw, "://") {
		raw = "wss://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parsing firehose URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("firehose URL scheme %q: want ws, wss, http or https", u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("firehose URL %q has no host", raw)
	}
	if !strings.HasSuffix(u.Path, subscribePath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + subscribePath
	}
	q := u.Query()
	if cursor != nil {
		q.Set("cursor", strconv.FormatInt(*cursor, 10))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Dial subscribes to the firehose at url (see SubscribeURL), replaying from after cursor
// when it is not nil, live otherwise.
func Dial(ctx context.Context, rawURL string, cursor *int64) (*Conn, error) {
	u, err := SubscribeURL(rawURL, cursor)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   64 << 10,
		WriteBufferSize:  1 << 10,
	}
	ws, resp, err := d.DialContext(ctx, u, http.Header{"User-Agent": []string{"hearth-firehose"}})
	if err != nil {
		if resp != nil {
			// The server refused the upgrade: report its XRPC error (or the start of
			// its body) the way every other outbound call does.
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			return nil, fmt.Errorf("dialing %s: %w", u, xrpc.ErrorFromResponse(resp, body))
		}
		return nil, fmt.Errorf("dialing %s: %w", u, err)
	}
	ws.SetReadLimit(MaxMessageSize)
	c := &Conn{ws: ws, ReadTimeout: DefaultReadTimeout}
	ws.SetPingHandler(func(data string) error {
		// Answer, and count the ping as a sign of life.
		ws.SetReadDeadline(time.Now().Add(c.ReadTimeout))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	return c, nil
}

// Next waits for the next frame and decodes it. An error frame is returned as an Event
// of Type TypeError (the server closes the stream after it). When the server closes the
// connection, the error is a *websocket.CloseError. Cancelling ctx breaks the connection
// (websocket reads cannot be resumed after an interrupted read).
func (c *Conn) Next(ctx context.Context) (*Event, error) {
	// ctx interrupts the read through AfterFunc (so a cancelled read reports ctx.Err()).
	c.ws.SetReadDeadline(time.Now().Add(c.ReadTimeout))
	stop := context.AfterFunc(ctx, func() { c.ws.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		typ, r, err := c.ws.NextReader()
		if err == nil && typ == websocket.BinaryMessage {
			c.buf.Reset()
			_, err = c.buf.ReadFrom(r)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if typ != websocket.BinaryMessage {
			continue // the next NextReader skips what is left of it
		}
		ev, err := Decode(c.buf.Bytes())
		if c.buf.Cap() > maxKeptFrameBuffer {
			c.buf = bytes.Buffer{} // a rare large frame: not kept for the next ones
		}
		return ev, err
	}
}

// maxKeptFrameBuffer is the largest frame buffer a Conn keeps between frames.
const maxKeptFrameBuffer = 1 << 20

// Close closes the connection, sending a close frame first.
func (c *Conn) Close() error {
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.ws.Close()
}

// Decode decodes one websocket message: a DAG-CBOR header then the body.
func Decode(data []byte) (*Event, error) {
	r := bytes.NewReader(data)
	var hdr events.EventHeader
	if err := hdr.UnmarshalCBOR(r); err != nil {
		return nil, fmt.Errorf("decoding frame header: %w", err)
	}
	switch hdr.Op {
	case events.EvtKindErrorFrame:
		var ef events.ErrorFrame
		if err := ef.UnmarshalCBOR(r); err != nil {
			return nil, fmt.Errorf("decoding error frame: %w", err)
		}
		return &Event{Type: TypeError, Error: &ErrorFrame{Error: ef.Error, Message: ef.Message}}, nil
	case events.EvtKindMessage:
	default:
		return nil, fmt.Errorf("unknown frame op %d", hdr.Op)
	}
	ev := &Event{Type: hdr.MsgType}
	var err error
	switch hdr.MsgType {
	case TypeCommit:
		ev.Commit = new(comatproto.SyncSubscribeRepos_Commit)
		if err = ev.Commit.UnmarshalCBOR(r); err == nil {
			ev.Seq = ev.Commit.Seq
		}
	case TypeSync:
		ev.Sync = new(comatproto.SyncSubscribeRepos_Sync)
		if err = ev.Sync.UnmarshalCBOR(r); err == nil {
			ev.Seq = ev.Sync.Seq
		}
	case TypeIdentity:
		ev.Identity = new(comatproto.SyncSubscribeRepos_Identity)
		if err = ev.Identity.UnmarshalCBOR(r); err == nil {
			ev.Seq = ev.Identity.Seq
		}
	case TypeAccount:
		ev.Account = new(comatproto.SyncSubscribeRepos_Account)
		if err = ev.Account.UnmarshalCBOR(r); err == nil {
			ev.Seq = ev.Account.Seq
		}
	case TypeInfo:
		ev.Info = new(comatproto.SyncSubscribeRepos_Info)
		err = ev.Info.UnmarshalCBOR(r)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", hdr.MsgType, err)
	}
	return ev, nil
}
