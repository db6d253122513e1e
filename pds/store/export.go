package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/hearth-social/hearth/repo"
	"github.com/ipfs/go-cid"
)

// snapshot is a consistent read view of one repository (a read transaction: WAL gives it
// a stable snapshot while commits continue).
type snapshot struct {
	ctx context.Context
	tx  *sql.Tx
	did string
}

func (s *Store) snapshot(ctx context.Context, did string, fn func(*snapshot, repo.Head) error) error {
	tx, err := s.db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var c, d []byte
	var h repo.Head
	err = tx.QueryRowContext(ctx, `SELECT commit_cid, rev, data_cid FROM repos WHERE did = ?`, did).Scan(&c, &h.Rev, &d)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if h.Commit, err = cid.Cast(c); err != nil {
		return err
	}
	if h.Data, err = cid.Cast(d); err != nil {
		return err
	}
	return fn(&snapshot{ctx: ctx, tx: tx, did: did}, h)
}

func (sn *snapshot) block(c cid.Cid) ([]byte, string, error) {
	var data []byte
	var rev string
	err := sn.tx.QueryRowContext(sn.ctx, `SELECT data, rev FROM blocks WHERE did = ? AND cid = ?`, sn.did, c.Bytes()).Scan(&data, &rev)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("block %s of %s: %w", c, sn.did, ErrNotFound)
	}
	return data, rev, err
}

func nodeChildren(data []byte) ([]cid.Cid, *mst.NodeData, error) {
	nd, err := mst.NodeDataFromCBOR(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("decoding MST node: %w", err)
	}
	var out []cid.Cid
	if nd.Left != nil {
		out = append(out, *nd.Left)
	}
	for _, e := range nd.Entries {
		if e.Right != nil {
			out = append(out, *e.Right)
		}
	}
	return out, nd, nil
}

// ExportRepo streams a repository as CAR blocks from one consistent snapshot: the
// commit, the MST nodes (walked from the root), then the records. With since set, only
// blocks written after that rev. begin is called with the head before any block.
//
// The account's commit and MST blocks are read in one scan and walked in memory: one
// query instead of one per node (the obsolete-block GC keeps that scan close to the
// live set).
func (s *Store) ExportRepo(ctx context.Context, did, since string, begin func(repo.Head) error, emit func(c cid.Cid, data []byte) error) error {
	return s.snapshot(ctx, did, func(sn *snapshot, h repo.Head) error {
		type stored struct {
			data []byte
			rev  string
		}
		nodes := map[string]stored{}
		rows, err := sn.tx.QueryContext(ctx, `SELECT cid, rev, data FROM blocks WHERE did = ?`, did)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c []byte
			var st stored
			if err := rows.Scan(&c, &st.rev, &st.data); err != nil {
				rows.Close()
				return err
			}
			nodes[string(c)] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		get := func(c cid.Cid) (stored, error) {
			st, ok := nodes[string(c.Bytes())]
			if !ok {
				return st, fmt.Errorf("block %s of %s: %w", c, did, ErrNotFound)
			}
			return st, nil
		}
		if err := begin(h); err != nil {
			return err
		}
		commit, err := get(h.Commit)
		if err != nil {
			return err
		}
		if err := emit(h.Commit, commit.data); err != nil {
			return err
		}
		queue := []cid.Cid{h.Data}
		for len(queue) > 0 {
			c := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			st, err := get(c)
			if err != nil {
				return err
			}
			if since != "" && st.rev <= since {
				continue // unchanged since `since`: so is everything below it
			}
			if err := emit(c, st.data); err != nil {
				return err
			}
			kids, _, err := nodeChildren(st.data)
			if err != nil {
				return err
			}
			queue = append(queue, kids...)
		}
		rows, err = sn.tx.QueryContext(ctx, `SELECT cid, value FROM records WHERE did = ? AND rev > ?`, did, since)
		if err != nil {
			return err
		}
		defer rows.Close()
		var raw, val sql.RawBytes
		for rows.Next() {
			if err := rows.Scan(&raw, &val); err != nil {
				return err
			}
			c, err := cid.Cast(raw)
			if err != nil {
				return err
			}
			if err := emit(c, val); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// RecordProof returns the blocks proving a record's presence or absence at the current
// head: the commit, the MST nodes on the key's path, and the record if present.
func (s *Store) RecordProof(ctx context.Context, did, path string) (repo.Head, []repo.Block, bool, error) {
	var head repo.Head
	var out []repo.Block
	found := false
	err := s.snapshot(ctx, did, func(sn *snapshot, h repo.Head) error {
		head = h
		data, _, err := sn.block(h.Commit)
		if err != nil {
			return err
		}
		out = append(out, repo.Block{CID: h.Commit, Data: data})
		key := []byte(path)
		next := &h.Data
		for next != nil {
			c := *next
			data, _, err := sn.block(c)
			if err != nil {
				return err
			}
			out = append(out, repo.Block{CID: c, Data: data})
			_, nd, err := nodeChildren(data)
			if err != nil {
				return err
			}
			next = nil
			// Walk the node's entries (keys are prefix-compressed) to find the key or
			// the subtree that would hold it.
			var prevKey []byte
			sub := nd.Left
			for _, e := range nd.Entries {
				k := append(append([]byte{}, prevKey[:min(int(e.PrefixLen), len(prevKey))]...), e.KeySuffix...)
				prevKey = k
				cmp := bytes.Compare(key, k)
				if cmp == 0 {
					found = true
					sub = nil
					break
				}
				if cmp < 0 {
					break
				}
				sub = e.Right
			}
			if !found {
				next = sub
			}
		}
		if found {
			var val []byte
			var rc []byte
			coll, rkey, _ := bytes.Cut([]byte(path), []byte("/"))
			err := sn.tx.QueryRowContext(ctx, `SELECT cid, value FROM records WHERE did = ? AND collection = ? AND rkey = ?`, did, string(coll), string(rkey)).Scan(&rc, &val)
			if err != nil {
				return fmt.Errorf("record %s: %w", path, err)
			}
			c, err := cid.Cast(rc)
			if err != nil {
				return err
			}
			out = append(out, repo.Block{CID: c, Data: val})
		}
		return nil
	})
	return head, out, found, err
}
