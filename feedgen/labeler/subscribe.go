package labeler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/internal/xrpc"
)

// Frame types and error names of com.atproto.label.subscribeLabels.
const (
	TypeLabels         = "#labels"
	TypeInfo           = "#info"
	ErrFutureCursor    = "FutureCursor"
	ErrConsumerTooSlow = "ConsumerTooSlow"
)

// closeWait bounds how long a closing subscriber waits for the peer's close reply.
const closeWait = time.Second

// EncodeLabelsFrame encodes a #labels message frame: the DAG-CBOR header {op: 1,
// t: "#labels"} followed by the body {seq, labels}.
func EncodeLabelsFrame(seq int64, labels []*comatproto.LabelDefs_Label) ([]byte, error) {
	return firehose.EncodeMessage(TypeLabels, &comatproto.LabelSubscribeLabels_Labels{Seq: seq, Labels: labels})
}

// Frame is one decoded subscribeLabels frame: Labels, Info or Error is set.
type Frame struct {
	Labels *comatproto.LabelSubscribeLabels_Labels
	Info   *comatproto.LabelSubscribeLabels_Info
	Error  *events.ErrorFrame
	// Type is the header's t ("" for error frames); unknown types have no body set.
	Type string
}

// DecodeFrame decodes a subscribeLabels frame (for clients and tests).
func DecodeFrame(data []byte) (*Frame, error) {
	r := bytes.NewReader(data)
	var hdr events.EventHeader
	if err := hdr.UnmarshalCBOR(r); err != nil {
		return nil, fmt.Errorf("frame header: %w", err)
	}
	f := &Frame{Type: hdr.MsgType}
	switch {
	case hdr.Op == events.EvtKindErrorFrame:
		f.Error = new(events.ErrorFrame)
		if err := f.Error.UnmarshalCBOR(r); err != nil {
			return nil, fmt.Errorf("error frame: %w", err)
		}
	case hdr.Op != events.EvtKindMessage:
		return nil, fmt.Errorf("frame header: unknown op %d", hdr.Op)
	case hdr.MsgType == TypeLabels:
		f.Labels = new(comatproto.LabelSubscribeLabels_Labels)
		if err := f.Labels.UnmarshalCBOR(r); err != nil {
			return nil, fmt.Errorf("#labels frame: %w", err)
		}
	case hdr.MsgType == TypeInfo:
		f.Info = new(comatproto.LabelSubscribeLabels_Info)
		if err := f.Info.UnmarshalCBOR(r); err != nil {
			return nil, fmt.Errorf("#info frame: %w", err)
		}
	}
	return f, nil
}

// handleSubscribeLabels serves GET /xrpc/com.atproto.label.subscribeLabels. Without a
// cursor the subscriber gets labels from now on; with one, every label after it (the
// log is never pruned, cursor 0 replays all) and then live labels, each exactly once.
// One frame carries one label; its seq is the label's sequence number.
func (l *Labeler) handleSubscribeLabels(w http.ResponseWriter, r *http.Request) {
	cursor, err := firehose.ParseCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		xrpc.WriteError(w, r, l.log, xrpc.InvalidRequest("%v", err))
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		xrpc.WriteError(w, r, l.log, xrpc.InvalidRequest("subscribeLabels is a websocket subscription"))
		return
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		xrpc.WriteError(w, r, l.log, xrpc.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "labeler is shutting down"))
		return
	case l.nsubs >= l.cfg.MaxSubscribers:
		l.mu.Unlock()
		xrpc.WriteError(w, r, l.log, xrpc.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "too many subscribers"))
		return
	}
	l.nsubs++
	l.subs.Add(1)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.nsubs--
		l.mu.Unlock()
		l.subs.Done()
	}()

	last, err := l.LastSeq(r.Context())
	if err != nil {
		xrpc.WriteError(w, r, l.log, err)
		return
	}
	conn, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered already.
		l.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	log := l.log.With("remote", r.RemoteAddr)
	if cursor != nil && *cursor > last {
		l.sendError(conn, ErrFutureCursor, fmt.Sprintf("cursor %d is ahead of the last label (%d)", *cursor, last))
		conn.Close()
		log.Info("label subscriber refused", "reason", ErrFutureCursor, "cursor", *cursor)
		return
	}
	pos := last
	if cursor != nil {
		pos = *cursor
	}
	began := time.Now()
	sent, reason := l.serve(conn, pos)
	log.Info("label subscriber disconnected", "from", pos, "sent", sent, "reason", reason,
		"duration", time.Since(began).Round(time.Millisecond))
}

// sendError writes an error frame then a close frame. The caller closes conn.
func (l *Labeler) sendError(conn *websocket.Conn, name, message string) {
	frame, err := firehose.EncodeError(name, message)
	if err != nil {
		return
	}
	deadline := time.Now().Add(l.cfg.WriteTimeout)
	conn.SetWriteDeadline(deadline)
	if conn.WriteMessage(websocket.BinaryMessage, frame) == nil {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, name), deadline)
	}
}

// serve streams labels after pos to conn until the peer goes, a write fails or times
// out (a slow consumer), or the labeler shuts down. It returns how many labels it sent
// and why it stopped. Only this goroutine writes data frames; control frames (pings,
// pongs, close) use WriteControl, which gorilla allows concurrently.
func (l *Labeler) serve(conn *websocket.Conn, pos int64) (int, string) {
	ctx, cancel := context.WithCancel(l.base)
	defer cancel()

	// Read pump: subscribers send only control frames; reading processes pongs, pings
	// and close frames (the default close handler answers the close) and notices a
	// peer that went away.
	readTimeout := 2*l.cfg.PingInterval + l.cfg.WriteTimeout
	conn.SetReadLimit(4 << 10)
	conn.SetReadDeadline(time.Now().Add(readTimeout))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(readTimeout))
	})
	conn.SetPingHandler(func(data string) error {
		conn.SetReadDeadline(time.Now().Add(readTimeout))
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(l.cfg.WriteTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return err
		}
		return nil
	})
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		defer cancel()
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()

	sent, reason := l.pump(ctx, conn, pos)
	if reason == "" {
		if l.base.Err() != nil {
			reason = "shutdown"
			err := conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(l.cfg.WriteTimeout))
			if err == nil {
				// Give the peer a moment to answer the close, then cut.
				t := time.NewTimer(closeWait)
				select {
				case <-pumpDone:
				case <-t.C:
				}
				t.Stop()
			}
		} else {
			reason = "peer went away"
		}
	}
	conn.Close()
	<-pumpDone
	return sent, reason
}

// pump sends labels until ctx is done (returning "") or the subscriber must go
// (returning why).
func (l *Labeler) pump(ctx context.Context, conn *websocket.Conn, pos int64) (int, string) {
	ping := time.NewTicker(l.cfg.PingInterval)
	defer ping.Stop()
	sendPing := func() error {
		return conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(l.cfg.WriteTimeout))
	}
	sent := 0
	for {
		if ctx.Err() != nil {
			return sent, ""
		}
		// Take the wake channel before reading, so a commit after the read wakes us.
		wake := l.wakeChan()
		batch, err := l.labelsAfter(ctx, pos, l.cfg.PageSize)
		if err != nil {
			if ctx.Err() != nil {
				return sent, ""
			}
			l.log.Warn("reading labels", "after", pos, "err", err)
			l.sendError(conn, "InternalServerError", "reading labels")
			return sent, "read error"
		}
		for i := range batch {
			lex := batch[i].ToLexicon()
			frame, err := EncodeLabelsFrame(batch[i].Seq, []*comatproto.LabelDefs_Label{&lex})
			if err != nil {
				return sent, "encode error: " + err.Error()
			}
			conn.SetWriteDeadline(time.Now().Add(l.cfg.WriteTimeout))
			if err := conn.WriteMessage(websocket.BinaryMessage, frame); err != nil {
				return sent, l.writeFailed(ctx, err)
			}
			sent++
			pos = batch[i].Seq
			select {
			case <-ping.C:
				if err := sendPing(); err != nil {
					return sent, l.writeFailed(ctx, err)
				}
			default:
			}
		}
		if len(batch) == l.cfg.PageSize {
			continue
		}
		select {
		case <-ctx.Done():
			return sent, ""
		case <-wake:
		case <-ping.C:
			if err := sendPing(); err != nil {
				return sent, l.writeFailed(ctx, err)
			}
		}
	}
}

// writeFailed classifies a failed write: a timeout means a slow consumer (no error frame
// can follow on a connection that takes no writes).
func (l *Labeler) writeFailed(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return ""
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrConsumerTooSlow + " (write timeout)"
	}
	return "write failed: " + err.Error()
}
