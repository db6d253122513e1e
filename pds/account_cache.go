package pds

import (
	"context"
	"sync"

	"github.com/hearth-social/hearth/pds/store"
)

// accountCache keeps recently used accounts by DID for the repo read and write paths
// (DID, handle, status), saving a query per request. Every code path that changes an
// account's handle or status calls forget after its transaction commits.
type accountCache struct {
	mu  sync.RWMutex
	m   map[string]*store.Account
	max int
}

func newAccountCache(max int) *accountCache {
	return &accountCache{m: make(map[string]*store.Account), max: max}
}

func (c *accountCache) get(ctx context.Context, st *store.Store, did string) (*store.Account, error) {
	c.mu.RLock()
	a, ok := c.m[did]
	c.mu.RUnlock()
	if ok {
		return a, nil
	}
	a, err := st.AccountByDID(ctx, did)
	if err != nil {
		return nil, err
	}
	// Secrets stay in the store: cached copies carry only what repo routing needs.
	a = &store.Account{DID: a.DID, Handle: a.Handle, Status: a.Status, CreatedAt: a.CreatedAt}
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k := range c.m { // drop an arbitrary entry; the map stays bounded
			delete(c.m, k)
			break
		}
	}
	c.m[did] = a
	c.mu.Unlock()
	return a, nil
}

func (c *accountCache) forget(did string) {
	c.mu.Lock()
	delete(c.m, did)
	c.mu.Unlock()
}
