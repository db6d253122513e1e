package index

import (
	"context"
	"database/sql"
	"errors"
)

// PublishedFeed is a feed generator record naming a service.
type PublishedFeed struct {
	URI, Publisher, Name string
}

// FeedGenerator returns the generator record at uri if it names serviceDID.
func (ix *Index) FeedGenerator(ctx context.Context, uri, serviceDID string) (*PublishedFeed, bool, error) {
	var f PublishedFeed
	err := ix.db.Read.QueryRowContext(ctx, `SELECT uri, publisher, rkey FROM feed_generators WHERE uri = ? AND service_did = ?`, uri, serviceDID).
		Scan(&f.URI, &f.Publisher, &f.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &f, true, nil
}

// FeedGenerators lists the generator records naming serviceDID.
func (ix *Index) FeedGenerators(ctx context.Context, serviceDID string) ([]PublishedFeed, error) {
	rows, err := ix.db.Read.QueryContext(ctx, `SELECT uri, publisher, rkey FROM feed_generators WHERE service_did = ? ORDER BY uri`, serviceDID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PublishedFeed
	for rows.Next() {
		var f PublishedFeed
		if err := rows.Scan(&f.URI, &f.Publisher, &f.Name); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
