package pds

import "context"

// CollectBlobGarbage runs one blob garbage collection pass now (tests only) and returns
// how many blobs it deleted.
func (s *Server) CollectBlobGarbage(ctx context.Context) (int, error) {
	return s.collectBlobGarbage(ctx)
}

// PasswordVerifications is how many scrypt verifications the server has run (tests).
func (s *Server) PasswordVerifications() int64 { return s.hasher.Verifications() }

// DeleteDueAccounts runs one pass of the deleteAfter sweep now (tests).
func (s *Server) DeleteDueAccounts(ctx context.Context) (int, error) { return s.deleteDueAccounts(ctx) }

// CheckMovedAway runs one pass of the moved-away check now (tests).
func (s *Server) CheckMovedAway(ctx context.Context) (int, error) { return s.checkMovedAway(ctx) }
