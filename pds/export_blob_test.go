package pds

import (
	"context"
	"time"

	"github.com/hearth-social/hearth/pds/store"
)

// CollectBlobGarbageBefore runs one garbage collection pass of blobs uploaded before
// cutoff (tests only); taken runs after each batch of rows is taken and before their
// files are removed, so a test can interleave an upload exactly there.
func (s *Server) CollectBlobGarbageBefore(ctx context.Context, cutoff time.Time, taken func(n int)) (int, error) {
	var hook func([]store.GarbageBlob)
	if taken != nil {
		hook = func(g []store.GarbageBlob) { taken(len(g)) }
	}
	return s.collectBlobGarbageBefore(ctx, cutoff, hook)
}

// SweepBlobFiles runs the blob-file reconciliation now (tests only).
func (s *Server) SweepBlobFiles(ctx context.Context) (int, error) {
	return s.sweepBlobFiles(ctx)
}
