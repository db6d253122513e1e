package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestFrameWriter(t *testing.T) {
	// Frames written by frameWriter, over a plain and a non-TCP connection, read back
	// with gorilla's reader.
	for _, name := range []string{"tcp", "pipe"} {
		t.Run(name, func(t *testing.T) {
			var server, client net.Conn
			if name == "pipe" {
				server, client = net.Pipe()
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				defer ln.Close()
				accepted := make(chan net.Conn, 1)
				go func() {
					c, _ := ln.Accept()
					accepted <- c
				}()
				client, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
				require.NoError(t, err)
				select {
				case server = <-accepted:
				case <-time.After(5 * time.Second):
					t.Fatal("no accept")
				}
			}
			defer server.Close()
			defer client.Close()
			sizes := []int{0, 1, 125, 126, 65535, 65536, 300000}
			go func() {
				w := &frameWriter{nc: server, timeout: 5 * time.Second}
				for i, n := range sizes {
					p := bytes.Repeat([]byte{byte(i)}, n)
					if i%2 == 0 {
						w.addFrame(opBinary, p)
					} else {
						w.add(BinaryHeader(n), p)
					}
				}
				w.flush()
				w.control(opClose, closeFrame(websocket.CloseGoingAway, "bye"))
			}()
			client.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(client)
			for i, n := range sizes {
				op, payload := readTestFrame(t, r)
				require.Equal(t, byte(opBinary), op)
				require.Equal(t, bytes.Repeat([]byte{byte(i)}, n), payload, "frame %d", i)
			}
			op, payload := readTestFrame(t, r)
			require.Equal(t, byte(opClose), op)
			require.Equal(t, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), payload)
		})
	}
}

// readTestFrame parses one unmasked, final frame (RFC 6455 §5.2).
func readTestFrame(t *testing.T, r *bufio.Reader) (byte, []byte) {
	t.Helper()
	var h [2]byte
	_, err := io.ReadFull(r, h[:])
	require.NoError(t, err)
	require.Equal(t, byte(0x80), h[0]&0xf0, "FIN set, no RSV bits")
	require.Zero(t, h[1]&0x80, "server frames are not masked")
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, err = io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, err = io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	require.NoError(t, err)
	p := make([]byte, n)
	_, err = io.ReadFull(r, p)
	require.NoError(t, err)
	return h[0] & 0x0f, p
}
