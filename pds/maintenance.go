package pds

import (
	"context"
	"time"
)

// runBlockGC deletes obsolete repo blocks queued by commits, in batches, until ctx is
// done. Batching keeps each commit to appends; the deletes here touch each page once
// for many blocks.
func (s *Server) runBlockGC(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := s.store.CollectBlocks(ctx, 1000)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("collecting obsolete blocks", "err", err)
				}
				break
			}
			if n < 1000 {
				break
			}
		}
	}
}
