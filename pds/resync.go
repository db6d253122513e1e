package pds

import (
	"context"
	"fmt"
	"log/slog"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/firehose"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/hearth-social/hearth/repo"
)

// appendSyncEvent appends a #sync for did at head: the event that tells relays and
// other consumers to take the repository as it is now, whatever they saw before (sync
// 1.1). Its blocks are a CAR of the signed head commit alone.
func appendSyncEvent(tx *store.Tx, did string, head repo.Head, commitData []byte) error {
	syncCAR, err := repo.CAR(head.Commit, []repo.Block{{CID: head.Commit, Data: commitData}})
	if err != nil {
		return err
	}
	at := tx.Now().UTC().Format(syntax.AtprotoDatetimeLayout)
	_, err = tx.AppendEvent(did, firehose.TypeSync, func(seq int64) ([]byte, error) {
		return firehose.SyncFrame(&comatproto.SyncSubscribeRepos_Sync{Did: did, Rev: head.Rev, Blocks: syncCAR, Time: at}, seq)
	})
	return err
}

// AnnounceResync appends a #sync with the current head of every active repository in
// the PDS database at path, which must not be in use by a running server. `hearth
// restore` calls it: the restored repositories are back at the backup's commits, while
// relays may have seen later ones from the old server, and a #sync is how they learn
// to take each repository as it now is. It returns how many events it appended.
func AnnounceResync(ctx context.Context, path string, log *slog.Logger) (int, error) {
	st, err := store.Open(ctx, path, log, store.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	n := 0
	for cursor := ""; ; {
		page, err := st.ListRepos(ctx, cursor, 200)
		if err != nil {
			return n, fmt.Errorf("listing repositories: %w", err)
		}
		if len(page) == 0 {
			return n, nil
		}
		cursor = page[len(page)-1].DID
		type head struct {
			did  string
			head repo.Head
			data []byte
		}
		var heads []head
		for _, r := range page {
			if r.Status != store.StatusActive {
				continue
			}
			sn, err := st.Snapshot(ctx, r.DID)
			if err != nil {
				return n, fmt.Errorf("reading the head of %s: %w", r.DID, err)
			}
			heads = append(heads, head{r.DID, sn.Head, sn.CommitData})
			sn.Close()
		}
		err = st.Write(ctx, func(tx *store.Tx) error {
			for _, h := range heads {
				if err := appendSyncEvent(tx, h.did, h.head, h.data); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("appending #sync events: %w", err)
		}
		n += len(heads)
	}
}
