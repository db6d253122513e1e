package labeler_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-social/hearth/feedgen/labeler"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/stretchr/testify/require"
)

// TestSlowConsumer: a subscriber that stops reading is dropped; a fast one, on the same
// stream, receives everything.
func TestSlowConsumer(t *testing.T) {
	const (
		perApply = 100
		applies  = 100 // 10,000 labels of ~700 bytes: 7 MB, more than loopback buffers hold
		total    = perApply * applies
	)
	// Distinct label values (lowercase letters only) and long record keys make many
	// large frames with few transactions.
	vals := make([]string, perApply)
	for i := range vals {
		vals[i] = fmt.Sprintf("v-%c%c", 'a'+i/26, 'a'+i%26)
	}
	pad := strings.Repeat("x", 400)

	// run writes every label while a fast subscriber reads in lockstep, and returns the
	// stalled subscriber.
	run := func(t *testing.T, mod func(*labeler.Config)) *websocket.Conn {
		l := openLabeler(t, "", mod)
		srv := httptest.NewServer(l.Handler())
		t.Cleanup(srv.Close)
		slow := dial(t, srv.URL, "") // never reads until the writes are done
		fast := dial(t, srv.URL, "")
		var seq int64
		for i := range applies {
			_, err := l.Apply(context.Background(), post(fmt.Sprintf("%d%s", i, pad)), cid1, vals)
			require.NoError(t, err)
			// Only the order is checked here: verifying 10,000 signatures would dominate
			// the test (TestSubscribeLabels verifies them).
			for range perApply {
				f := readFrame(t, fast)
				require.NotNil(t, f.Labels, "fast subscriber: %+v", f.Error)
				require.Equal(t, seq+1, f.Labels.Seq)
				seq = f.Labels.Seq
			}
		}
		return slow
	}

	t.Run("lag past MaxLag gets ConsumerTooSlow", func(t *testing.T) {
		// The write timeout outlasts the stall, so when the stalled reader drains its
		// socket the server sees it is too far behind and says so.
		slow := run(t, func(c *labeler.Config) {
			// Above the 100 labels one Apply adds, so only the stalled reader lags.
			c.MaxLag = 2 * perApply
			c.WriteTimeout = 30 * time.Second
		})
		var last int64
		for {
			f := readFrame(t, slow)
			if f.Error != nil {
				require.Equal(t, firehose.ErrConsumerTooSlow, f.Error.Error)
				break
			}
			require.NotNil(t, f.Labels)
			require.Equal(t, last+1, f.Labels.Seq, "no gap, no duplicate")
			last = f.Labels.Seq
		}
		require.Less(t, last, int64(total))
		require.NoError(t, slow.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, _, err := slow.ReadMessage()
		require.True(t, websocket.IsCloseError(err, websocket.ClosePolicyViolation), "got %v", err)
	})

	t.Run("write timeout drops a stalled reader", func(t *testing.T) {
		slow := run(t, func(c *labeler.Config) {
			c.MaxLag = 1 << 20
			c.WriteTimeout = 500 * time.Millisecond
		})
		// Past the write timeout of the write that blocked during the applies.
		time.Sleep(time.Second)
		// The connection was cut: draining it stops short of the last label. (How it
		// stops depends on the kernel: an EOF, or nothing more at all once a socket
		// closed with a zero window is given up, hence the short per-read deadline. A
		// connection that was not cut would deliver every label well within it.)
		var got int
		for {
			require.NoError(t, slow.SetReadDeadline(time.Now().Add(2*time.Second)))
			if _, _, err := slow.ReadMessage(); err != nil {
				break
			}
			got++
		}
		require.Less(t, got, total)
	})
}
