package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEventsPageByteBound(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "pds.sqlite"))
	defer s.Close()
	sizes := []int{1000, 1000, 5000, 10, 10, 10}
	require.NoError(t, s.Write(ctx, func(tx *Tx) error {
		for _, n := range sizes {
			if _, err := tx.AppendEvent("did:plc:a", "#commit", func(int64) ([]byte, error) { return make([]byte, n), nil }); err != nil {
				return err
			}
		}
		return nil
	}))
	seqs := func(evs []Event) []int64 {
		var out []int64
		for _, e := range evs {
			out = append(out, e.Seq)
		}
		return out
	}
	// Stops once the bound is reached: 1000+1000 >= 1500.
	evs, err := s.EventsPage(ctx, 0, 100, 1500)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2}, seqs(evs))
	// The first event comes back even when it alone exceeds the bound.
	evs, err = s.EventsPage(ctx, 2, 100, 100)
	require.NoError(t, err)
	require.Equal(t, []int64{3}, seqs(evs))
	// The count bound still applies, and 0 means no byte bound.
	evs, err = s.EventsPage(ctx, 0, 4, 0)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3, 4}, seqs(evs))
	evs, err = s.EventsAfter(ctx, 3, 100)
	require.NoError(t, err)
	require.Equal(t, []int64{4, 5, 6}, seqs(evs))
}
