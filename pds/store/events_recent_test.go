package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// eventsInDB reads the log from the database alone.
func eventsInDB(t *testing.T, s *Store, after int64, limit int) []Event {
	t.Helper()
	rows, err := s.db.Read.Query(`SELECT seq, kind, frame FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	require.NoError(t, err)
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		require.NoError(t, rows.Scan(&e.Seq, &e.Kind, &e.Frame))
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

// The in-memory window answers exactly what the database holds: through rolled-back
// transactions, more events than the window keeps, an account deletion and pruning.
func TestRecentEventsMatchDatabase(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "pds.sqlite"))
	defer s.Close()
	check := func(label string) {
		t.Helper()
		last, err := s.LastSeq(ctx)
		require.NoError(t, err)
		for _, after := range []int64{0, 1, last / 2, last - recentMaxEvents, last - 10, last - 1, last, last + 5} {
			if after < 0 {
				continue
			}
			got, err := s.EventsPage(ctx, after, 100, 0)
			require.NoError(t, err)
			require.Equal(t, eventsInDB(t, s, after, 100), got, "%s: after %d", label, after)
		}
	}
	appendN := func(did string, n int) {
		t.Helper()
		require.NoError(t, s.Write(ctx, func(tx *Tx) error {
			for range n {
				if _, err := tx.AppendEvent(did, "#commit", func(seq int64) ([]byte, error) { return []byte(fmt.Sprint(did, seq)), nil }); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	appendN("did:plc:a", 5)
	check("first batch")
	// A transaction that fails leaves nothing behind, in memory either.
	err := s.Write(ctx, func(tx *Tx) error {
		if _, err := tx.AppendEvent("did:plc:a", "#commit", func(int64) ([]byte, error) { return []byte("lost"), nil }); err != nil {
			return err
		}
		return errors.New("no")
	})
	require.Error(t, err)
	check("after a rollback")
	for i := range 30 {
		appendN([]string{"did:plc:a", "did:plc:b"}[i%2], 200)
	}
	check("past the window")
	require.NoError(t, s.Write(ctx, func(tx *Tx) error { _, err := tx.DeleteAccountData("did:plc:b"); return err }))
	check("after deleting an account")
	appendN("did:plc:c", 3)
	n, err := s.PruneEvents(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Positive(t, n)
	check("after pruning everything")
	appendN("did:plc:c", 3)
	check("after pruning, new events")
}
