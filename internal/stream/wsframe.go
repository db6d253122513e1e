package stream

import (
	"encoding/binary"
	"net"
	"time"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// maxFlushBytes bounds the bytes handed to one write, so WriteTimeout measures a bounded
// amount of work.
const maxFlushBytes = 256 << 10

// BinaryHeader returns the websocket header of a binary frame of n payload bytes. A
// source that hands the same frame to many subscribers (an in-memory ring) computes it
// once and sets Event.Header.
func BinaryHeader(n int) []byte { return appendHeader(nil, opBinary, n) }

// appendHeader appends the header of a final, unmasked (server-to-client) frame.
func appendHeader(dst []byte, opcode byte, n int) []byte {
	dst = append(dst, 0x80|opcode)
	switch {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return dst
}

// frameWriter writes websocket frames to a connection, batching many frames into one
// write (writev on TCP) when a subscriber has several pending: gorilla/websocket writes
// one message per call, which costs a syscall per frame on a busy stream. gorilla still
// does the handshake and reads; all writes go through one frameWriter, owned by the
// subscriber's goroutine. The read side's handlers are replaced so they never write; the
// only write gorilla still makes is a close frame when the peer violates the protocol,
// and since net.Conn serializes whole Write calls and every flush holds complete frames,
// even that lands between frames.
type frameWriter struct {
	nc      net.Conn
	timeout time.Duration
	bufs    net.Buffers
	hdrs    []byte // headers of frames added without a precomputed one
	joined  []byte // scratch for connections without vectored writes (TLS)
	pending int    // bytes in bufs
	frames  int    // data frames in bufs
}

// add queues a data frame whose header was precomputed with BinaryHeader.
func (w *frameWriter) add(hdr, payload []byte) {
	w.bufs = append(w.bufs, hdr, payload)
	w.pending += len(hdr) + len(payload)
	w.frames++
}

// addFrame queues a frame of the given opcode, computing its header.
func (w *frameWriter) addFrame(opcode byte, payload []byte) {
	off := len(w.hdrs)
	w.hdrs = appendHeader(w.hdrs, opcode, len(payload))
	// Slice with a capacity limit so a later append to hdrs cannot overwrite it.
	hdr := w.hdrs[off:len(w.hdrs):len(w.hdrs)]
	w.bufs = append(w.bufs, hdr, payload)
	w.pending += len(hdr) + len(payload)
	if opcode == opBinary {
		w.frames++
	}
}

// full reports whether the queued frames should be flushed before adding more.
func (w *frameWriter) full(maxFrames int) bool {
	return w.pending >= maxFlushBytes || w.frames >= maxFrames
}

// flush writes everything queued within the write timeout and returns how many data
// frames it wrote. After an error the connection is unusable (a frame may be half
// written).
func (w *frameWriter) flush() (int, error) {
	n := w.frames
	if len(w.bufs) == 0 {
		return 0, nil
	}
	w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	var err error
	switch w.nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		// One writev for the whole batch.
		b := w.bufs
		_, err = b.WriteTo(w.nc)
	default:
		// Anything else (a *tls.Conn) would turn every buffer into its own write: join
		// them first.
		w.joined = w.joined[:0]
		for _, p := range w.bufs {
			w.joined = append(w.joined, p...)
		}
		_, err = w.nc.Write(w.joined)
		if cap(w.joined) > 4*maxFlushBytes {
			w.joined = nil
		}
	}
	clear(w.bufs)
	w.bufs, w.hdrs, w.pending, w.frames = w.bufs[:0], w.hdrs[:0], 0, 0
	if err != nil {
		return 0, err
	}
	return n, nil
}

// control writes one control frame (with anything queued before it).
func (w *frameWriter) control(opcode byte, payload []byte) error {
	w.addFrame(opcode, payload)
	_, err := w.flush()
	return err
}
