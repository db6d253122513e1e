package store

import (
	"context"
	"database/sql"
	"fmt"
)

// readStmts are prepared statements on the read pool for the hot read paths.
type readStmts struct {
	record      *sql.Stmt
	head        *sql.Stmt
	accountDID  *sql.Stmt
	handleToDID *sql.Stmt
	recordBlock *sql.Stmt
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = db.PrepareContext(ctx, q)
		if err != nil {
			err = fmt.Errorf("preparing %q: %w", q, err)
		}
		return st
	}
	r.record = prep(`SELECT cid, value FROM records WHERE did = ? AND collection = ? AND rkey = ?`)
	r.head = prep(`SELECT commit_cid, rev, data_cid FROM repos WHERE did = ?`)
	r.accountDID = prep(`SELECT ` + accountCols + ` FROM accounts WHERE did = ?`)
	r.handleToDID = prep(`SELECT did FROM accounts WHERE handle = ?`)
	r.recordBlock = prep(`SELECT value FROM records WHERE did = ? AND cid = ? LIMIT 1`)
	return err
}

func (r *readStmts) close() {
	for _, st := range []*sql.Stmt{r.record, r.head, r.accountDID, r.handleToDID, r.recordBlock} {
		if st != nil {
			st.Close()
		}
	}
}
