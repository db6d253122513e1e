package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Event is a stored firehose frame.
type Event struct {
	Seq   int64
	Kind  string
	Frame []byte
}

// EventsAfter returns up to limit events with seq > after, in seq order.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error) {
	return s.EventsPage(ctx, after, limit, 0)
}

// EventsPage returns events with seq > after, in seq order: at most limit of them, and
// none after the frames read so far total maxBytes or more (0: no byte bound). A page
// thus holds at most maxBytes plus one frame, and always at least one event when any
// follows, so a reader makes progress whatever the frame sizes.
func (s *Store) EventsPage(ctx context.Context, after int64, limit int, maxBytes int64) ([]Event, error) {
	s.notifyMu.Lock()
	evs, ok := s.recent.page(after, limit, maxBytes)
	s.notifyMu.Unlock()
	if ok {
		return evs, nil
	}
	rows, err := s.db.Read.QueryContext(ctx, `SELECT seq, kind, frame FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// Frames can be megabytes each: do not preallocate for limit of them.
	out := make([]Event, 0, min(limit, 64))
	var total int64
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.Seq, &e.Kind, &e.Frame); err != nil {
			return nil, err
		}
		out = append(out, e)
		total += int64(len(e.Frame))
		if maxBytes > 0 && total >= maxBytes {
			// Stop stepping the statement: the rows not read are never copied out.
			break
		}
	}
	return out, rows.Err()
}

// OldestEvent returns the lowest kept seq and its time; ErrNotFound when the log is empty.
func (s *Store) OldestEvent(ctx context.Context) (int64, time.Time, error) {
	var seq, ms int64
	err := s.db.Read.QueryRowContext(ctx, `SELECT seq, created_ms FROM events ORDER BY seq LIMIT 1`).Scan(&seq, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, ErrNotFound
	}
	return seq, time.UnixMilli(ms), err
}

// PruneEvents deletes events older than before, in bounded chunks so the writer is never
// held long. It returns how many rows were deleted.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	// Events are appended in time order, so everything below the first event at or after
	// `before` is old; finding it walks the old rows in key order (no time index needed).
	var cutoff int64
	err := s.db.Read.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM events WHERE created_ms >= ? ORDER BY seq LIMIT 1), (SELECT max(seq) + 1 FROM events), 0)`, before.UnixMilli()).Scan(&cutoff)
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		var n int64
		err := s.Write(ctx, func(t *Tx) error {
			res, err := t.exec(`DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq < ? ORDER BY seq LIMIT 5000)`, cutoff)
			if err != nil {
				return err
			}
			t.s.recent.pruned = max(t.s.recent.pruned, cutoff)
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < 5000 {
			return total, nil
		}
	}
}
