package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNotify: the Notify channel is closed by a durable batch that appended events,
// replaced by a fresh one, and left open by a batch that appended none.
func TestNotify(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "pds.sqlite"))
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	before := s.Notify()
	require.NoError(t, s.Write(ctx, func(tx *Tx) error {
		return tx.PutPreferences("did:plc:a", []byte(`{"preferences":[]}`))
	}))
	require.False(t, closed(before), "a batch without events must not wake readers")

	require.NoError(t, s.Write(ctx, func(tx *Tx) error {
		_, err := tx.AppendEvent("did:plc:a", "#info", func(int64) ([]byte, error) { return []byte{1}, nil })
		return err
	}))
	// Write returns after the batch's COMMIT, and the channel is closed right after it
	// on the writer goroutine; wait for it boundedly.
	require.Eventually(t, func() bool { return closed(before) }, 5*time.Second, time.Millisecond, "a batch with events must wake readers")
	after := s.Notify()
	require.False(t, closed(after), "each batch swaps in a new channel")
}
