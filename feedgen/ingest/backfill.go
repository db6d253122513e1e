package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/feedgen/index"
	"github.com/hearth-social/hearth/internal/xrpc"
	"github.com/ipfs/go-cid"
)

const (
	// maxRepoBytes bounds one getRepo download.
	maxRepoBytes = 1 << 30
	// maxPageBytes bounds one listRepos page.
	maxPageBytes = 16 << 20
)

func (in *Ingester) backfillKey() string { return "backfill " + in.cfg.BackfillURL }

func (in *Ingester) needsBackfill(ctx context.Context) (bool, error) {
	state, err := in.idx.Meta(ctx, in.backfillKey())
	if err != nil {
		return false, err
	}
	switch state {
	case "done":
		return false, nil
	case "running":
		return true, nil
	}
	return in.idx.IsEmpty(ctx)
}

// Backfill reads every repository of the PDS at BackfillURL (listRepos + getRepo) into
// the index.
//
// It runs beside the live stream rather than before it: the stream starts at the live
// head when the backfill starts, so nothing between the two is missed, and the two
// cannot double-count because each repository snapshot is applied only when its rev is
// at least the one the stream has already applied for that repository (a snapshot older
// than the stream's last commit is fetched again). Snapshots only create rows, and do
// not move the firehose cursor.
//
// Progress is kept in the index's meta table ("running", then "done"), so a backfill
// interrupted by a crash is run again, and a finished one never is.
//
// Run calls it when the index is empty.
func (in *Ingester) Backfill(ctx context.Context) error {
	if err := in.idx.SetMeta(ctx, in.backfillKey(), "running"); err != nil {
		return err
	}
	base := strings.TrimRight(in.cfg.BackfillURL, "/")
	// The backfill PDS is operator-chosen (usually the co-hosted one), so it is not
	// guarded; a whole repository may take minutes to download.
	client, err := xrpc.NewClient(base, xrpc.WithHTTPClient(&http.Client{Timeout: 10 * time.Minute}), xrpc.WithMaxBodyBytes(maxPageBytes))
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	began := time.Now()
	repos, records := 0, 0
	cursor := ""
	for {
		q := url.Values{"limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page comatproto.SyncListRepos_Output
		if err := client.Query(ctx, "com.atproto.sync.listRepos", "", q, &page); err != nil {
			return fmt.Errorf("listRepos: %w", err)
		}
		for _, r := range page.Repos {
			if r == nil {
				continue
			}
			n, err := in.backfillRepo(ctx, client, r)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				in.log.Warn("backfill: skipping repository", "did", r.Did, "err", err)
				continue
			}
			repos++
			records += n
		}
		if page.Cursor == nil || *page.Cursor == "" || len(page.Repos) == 0 {
			break
		}
		cursor = *page.Cursor
	}
	if err := in.idx.SetMeta(ctx, in.backfillKey(), "done"); err != nil {
		return err
	}
	in.log.Info("backfill done", "pds", base, "repos", repos, "records", records, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// backfillRepo indexes one repository and returns the number of records it indexed.
func (in *Ingester) backfillRepo(ctx context.Context, client *xrpc.Client, r *comatproto.SyncListRepos_Repo) (int, error) {
	did, err := syntax.ParseDID(r.Did)
	if err != nil {
		return 0, err
	}
	if r.Active != nil && !*r.Active {
		status := ""
		if r.Status != nil {
			status = *r.Status
		}
		_, err := in.idx.Apply(ctx, "", []index.Event{{Account: &index.Account{DID: did.String(), Active: false, Status: status}}})
		return 0, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		body, err := client.QueryBytes(ctx, "com.atproto.sync.getRepo", "", url.Values{"did": {did.String()}}, maxRepoBytes)
		if err != nil {
			return 0, fmt.Errorf("getRepo: %w", err)
		}
		c, err := in.snapshot(ctx, did, body)
		if err != nil {
			return 0, err
		}
		st, err := in.idx.Apply(ctx, "", []index.Event{{Commit: c}})
		if err != nil {
			return 0, err
		}
		if st.Stale == 0 {
			return len(c.Ops), nil
		}
		// The live stream applied a newer commit meanwhile: this snapshot may hold
		// records that commit deleted. Read the repository again.
	}
	return 0, fmt.Errorf("repository keeps changing under the backfill")
}

// snapshot verifies a getRepo CAR and turns its wanted records into a snapshot commit.
func (in *Ingester) snapshot(ctx context.Context, did syntax.DID, carBytes []byte) (*index.Commit, error) {
	commit, repo, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(carBytes))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if commit.DID != did.String() {
		return nil, fmt.Errorf("%w: repository of %s holds a commit by %s", ErrInvalid, did, commit.DID)
	}
	if !in.cfg.SkipVerify {
		ident, err := in.dir.LookupDID(ctx, did)
		if err != nil {
			return nil, err
		}
		key, err := ident.PublicKey()
		if err != nil {
			return nil, err
		}
		if err := commit.VerifySignature(key); err != nil {
			return nil, fmt.Errorf("%w: signature: %w", ErrInvalid, err)
		}
	}
	out := &index.Commit{DID: did.String(), Rev: commit.Rev, Snapshot: true}
	err = repo.MST.Walk(func(key []byte, val cid.Cid) error {
		coll, rkey, err := syntax.ParseRepoPath(string(key))
		if err != nil || !Wanted(coll.String()) {
			return nil
		}
		blk, err := repo.RecordStore.Get(ctx, val)
		if err != nil {
			return nil // a partial CAR: index what is there
		}
		rec, err := DecodeRecord(coll.String(), blk.RawData())
		if err != nil || rec == nil {
			return nil
		}
		out.Ops = append(out.Ops, index.Op{Action: index.ActionCreate, Collection: coll.String(), RKey: rkey.String(), CID: val.String(), Record: rec})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
