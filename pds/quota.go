package pds

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
)

// Per-account storage quotas (Config.QuotaRepoBytes, QuotaBlobBytes; 0 is unlimited).
// A write that would take an account past its quota is refused with
// StorageQuotaExceeded (neither the reference PDS nor Cocoon has quotas, so the name is
// Hearth's); deletes are always allowed, so an account over its quota can get under it.
//
// Blob bytes are checked exactly, inside the transaction that records an upload. Repo
// bytes (the records' DAG-CBOR and the head commit) would cost a scan of the account's
// records per write, so each account's figure is cached: measured, then raised by every
// write let through and measured again when it is older than usageTTL or the estimate
// would refuse a write. The estimate only ever overstates (a delete or a smaller
// update lowers the real figure first), so no write is refused without a measurement.

// usageTTL is how long a measured repo size is trusted (plus what was written since).
const usageTTL = 5 * time.Minute

type usageEntry struct {
	repoBytes int64
	measured  time.Time
}

// usageCache holds each account's estimated repo bytes, bounded in size.
type usageCache struct {
	mu  sync.Mutex
	m   map[string]*usageEntry
	max int
}

func newUsageCache(max int) *usageCache { return &usageCache{m: map[string]*usageEntry{}, max: max} }

func (c *usageCache) estimate(did string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[did]
	if !ok || time.Since(e.measured) > usageTTL {
		return 0, false
	}
	return e.repoBytes, true
}

func (c *usageCache) put(did string, repoBytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[did]; !ok && len(c.m) >= c.max {
		for k := range c.m { // drop an arbitrary entry; the map stays bounded
			delete(c.m, k)
			break
		}
	}
	c.m[did] = &usageEntry{repoBytes: repoBytes, measured: time.Now()}
}

func (c *usageCache) add(did string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[did]; ok {
		e.repoBytes += n
	}
}

func (c *usageCache) forget(did string) {
	c.mu.Lock()
	delete(c.m, did)
	c.mu.Unlock()
}

func quotaError(what string, used, incoming, quota int64) error {
	return xrpc.Errorf(http.StatusBadRequest, "StorageQuotaExceeded",
		"this account's %s would exceed its storage quota: %d bytes used, %d more, quota %d bytes; delete some to make room", what, used, incoming, quota)
}

// writeBytes is what writes add to a repo: the records they create or replace.
func writeBytes(writes []repo.Write) int64 {
	var n int64
	for _, w := range writes {
		if w.Action != repo.ActionDelete {
			n += int64(len(w.Record))
		}
	}
	return n
}

// checkRepoQuota refuses writes to did that would take its records past
// Config.QuotaRepoBytes.
func (s *Server) checkRepoQuota(ctx context.Context, did string, writes []repo.Write) error {
	quota := s.cfg.QuotaRepoBytes
	incoming := writeBytes(writes)
	if quota <= 0 || incoming == 0 {
		return nil
	}
	used, fresh := s.usage.estimate(did)
	if !fresh || used+incoming > quota {
		u, err := s.store.AccountUsage(ctx, did)
		if err != nil {
			return err
		}
		used = u.RepoBytes
		s.usage.put(did, used)
	}
	if used+incoming > quota {
		return quotaError("records", used, incoming, quota)
	}
	s.usage.add(did, incoming)
	return nil
}

// checkRepoReplace refuses an import whose records (which replace the account's) are
// past Config.QuotaRepoBytes.
func (s *Server) checkRepoReplace(did string, recs []store.ImportedRecord) error {
	var size int64
	for _, r := range recs {
		size += int64(len(r.Value))
	}
	if quota := s.cfg.QuotaRepoBytes; quota > 0 && size > quota {
		return quotaError("imported records", 0, size, quota)
	}
	s.usage.forget(did)
	return nil
}

// checkBlobQuota is the early check of an upload of incoming bytes (the request's
// Content-Length, or -1 when unknown), before any byte is read: it refuses an upload
// that cannot fit whatever its bytes are, the exact check (checkBlobQuotaTx) the rest
// (an upload of bytes the account already has counts nothing, and only the bytes tell).
func (s *Server) checkBlobQuota(ctx context.Context, did string, incoming int64) error {
	quota := s.cfg.QuotaBlobBytes
	if quota <= 0 {
		return nil
	}
	if incoming > quota {
		return quotaError("blobs", 0, incoming, quota)
	}
	u, err := s.store.AccountUsage(ctx, did)
	if err != nil {
		return err
	}
	if u.BlobBytes >= quota {
		return quotaError("blobs", u.BlobBytes, max(incoming, 0), quota)
	}
	return nil
}

// checkBlobQuotaTx is the exact check, in the transaction about to record blob meta.
// The same bytes uploaded again count once.
func (s *Server) checkBlobQuotaTx(tx *store.Tx, did string, meta store.BlobMeta) error {
	quota := s.cfg.QuotaBlobBytes
	if quota <= 0 {
		return nil
	}
	used, err := tx.BlobBytesExcept(did, meta.CID.Bytes())
	if err != nil {
		return err
	}
	if used+meta.Size > quota {
		return quotaError("blobs", used, meta.Size, quota)
	}
	return nil
}

// Storage is an account's storage use and quotas (0: unlimited), for the admin API.
type Storage struct {
	RepoBytes int64 `json:"repoBytes"`
	BlobBytes int64 `json:"blobBytes"`
	RepoQuota int64 `json:"repoQuota,omitempty"`
	BlobQuota int64 `json:"blobQuota,omitempty"`
	OverQuota bool  `json:"overQuota,omitempty"`
}

// accountStorage measures did's storage (and refreshes the repo estimate).
func (s *Server) accountStorage(ctx context.Context, did string) (Storage, error) {
	u, err := s.store.AccountUsage(ctx, did)
	if err != nil {
		return Storage{}, err
	}
	s.usage.put(did, u.RepoBytes)
	st := Storage{RepoBytes: u.RepoBytes, BlobBytes: u.BlobBytes, RepoQuota: s.cfg.QuotaRepoBytes, BlobQuota: s.cfg.QuotaBlobBytes}
	st.OverQuota = (st.RepoQuota > 0 && st.RepoBytes > st.RepoQuota) || (st.BlobQuota > 0 && st.BlobBytes > st.BlobQuota)
	return st, nil
}
