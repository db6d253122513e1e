package plc

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-social/hearth/internal/sqlitedb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrDIDNotRegistered is returned for a DID the directory has no operations for.
var ErrDIDNotRegistered = errors.New("DID not registered")

// ErrDIDTombstoned is returned when the DID's latest operation is a tombstone.
var ErrDIDTombstoned = errors.New("DID not available (tombstoned)")

// Server is an embedded did:plc directory: it verifies submitted operations
// like plc.directory does and stores accepted ones in SQLite. Writes are
// serialised by the database's single writer connection; each submission's
// checks against the current log and its insert run in one transaction.
type Server struct {
	db  *sqlitedb.DB
	log *slog.Logger
	now func() time.Time
}

// OpenServer opens (creating if needed) the directory database at path.
func OpenServer(ctx context.Context, path string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("plc directory: %w", err)
	}
	// The directory is small: a small cache and reader pool are plenty.
	db, err := sqlitedb.Open(ctx, path, migrations, sqlitedb.Options{CacheKiB: 1024, Readers: 2})
	if err != nil {
		return nil, fmt.Errorf("plc directory: %w", err)
	}
	return &Server{db: db, log: log, now: time.Now}, nil
}

// Close closes the database.
func (d *Server) Close() error { return d.db.Close() }

// storedOp is one row of plc_ops.
type storedOp struct {
	op        *Op
	cid       string
	nullified bool
	createdAt string
}

// ParsePLCDID checks that s is a syntactically valid did:plc (24 base32 characters).
func ParsePLCDID(s string) (syntax.DID, error) {
	id, ok := strings.CutPrefix(s, "did:plc:")
	if !ok || len(id) != 24 {
		return "", reject("invalid DID: %q", s)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z') && !(c >= '2' && c <= '7') {
			return "", reject("invalid DID: %q", s)
		}
	}
	return syntax.DID(s), nil
}

// SubmitJSON is Submit for a JSON-encoded op (as received over HTTP). It returns
// the accepted op's CID.
func (d *Server) SubmitJSON(ctx context.Context, didStr string, body []byte) (string, error) {
	did, err := ParsePLCDID(didStr)
	if err != nil {
		return "", err
	}
	if len(body) > maxRequestBytes {
		return "", reject("operation too large: %d bytes of JSON", len(body))
	}
	op, err := ParseOp(body)
	if err != nil {
		return "", err
	}
	if err := checkSize(op); err != nil {
		return "", err
	}
	c, err := OpCID(op)
	if err != nil {
		return "", reject("cannot encode operation: %v", err)
	}
	opCID := c.String()
	opJSON, err := json.Marshal(op)
	if err != nil {
		return "", fmt.Errorf("submit %s: %w", did, err)
	}

	tx, err := d.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("submit %s: begin: %w", did, err)
	}
	defer tx.Rollback()

	last, err := lastOp(ctx, tx, did)
	if err != nil && !errors.Is(err, ErrDIDNotRegistered) {
		return "", fmt.Errorf("submit %s: %w", did, err)
	}
	if err := verifyNext(did, op, last); err != nil {
		d.log.InfoContext(ctx, "plc op rejected", "did", did, "cid", opCID, "reason", err)
		return "", err
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO plc_ops (did, cid, op, tombstone, created_at) VALUES (?, ?, ?, ?, ?)`,
		did.String(), opCID, string(opJSON), op.IsTombstone(), d.now().UTC().Format(createdAtFormat))
	if err != nil {
		return "", fmt.Errorf("submit %s: insert: %w", did, err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("submit %s: commit: %w", did, err)
	}
	d.log.InfoContext(ctx, "plc op accepted", "did", did, "cid", opCID, "type", op.Type, "genesis", op.IsGenesis())
	return opCID, nil
}

const (
	createdAtFormat = "2006-01-02T15:04:05.000Z"
	maxRequestBytes = 64 << 10
)

// verifyNext checks op against the DID's current latest op (nil when the DID is
// not registered yet).
func verifyNext(did syntax.DID, op *Op, last *storedOp) error {
	if last == nil {
		if !op.IsGenesis() {
			return reject("DID not registered: %s (first operation must have prev null)", did)
		}
		derived, err := DIDForGenesis(op)
		if err != nil {
			return reject("cannot derive DID from genesis operation: %v", err)
		}
		if derived != did {
			return reject("DID does not match genesis operation: %s derives %s", did, derived)
		}
		if _, err := VerifySig(op, op.RotationKeys); err != nil {
			return reject("invalid signature: genesis operation is not signed by one of its rotation keys (%v)", err)
		}
		return nil
	}
	if last.op.IsTombstone() {
		return reject("DID is tombstoned: %s", did)
	}
	if op.IsGenesis() {
		return reject("DID already registered: %s (operation has prev null)", did)
	}
	if *op.Prev != last.cid {
		return reject("invalid prev: %s is not the latest operation %s", *op.Prev, last.cid)
	}
	if _, err := VerifySig(op, last.op.RotationKeys); err != nil {
		return reject("invalid signature: operation is not signed by a rotation key of the previous operation (%v)", err)
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func lastOp(ctx context.Context, q querier, did syntax.DID) (*storedOp, error) {
	ops, err := queryOps(ctx, q, `SELECT op, cid, nullified, created_at FROM plc_ops WHERE did = ? ORDER BY seq DESC LIMIT 1`, did)
	if err != nil {
		return nil, err
	}
	return ops[0], nil
}

func queryOps(ctx context.Context, q querier, query string, did syntax.DID) ([]*storedOp, error) {
	rows, err := q.QueryContext(ctx, query, did.String())
	if err != nil {
		return nil, fmt.Errorf("query ops of %s: %w", did, err)
	}
	defer rows.Close()
	var out []*storedOp
	for rows.Next() {
		var (
			s      storedOp
			opJSON string
		)
		if err := rows.Scan(&opJSON, &s.cid, &s.nullified, &s.createdAt); err != nil {
			return nil, fmt.Errorf("scan op of %s: %w", did, err)
		}
		s.op = new(Op)
		if err := json.Unmarshal([]byte(opJSON), s.op); err != nil {
			return nil, fmt.Errorf("decode stored op %s: %w", s.cid, err)
		}
		out = append(out, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query ops of %s: %w", did, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrDIDNotRegistered, did)
	}
	return out, nil
}

// LastOp returns the DID's latest operation (possibly a tombstone) and its CID.
func (d *Server) LastOp(ctx context.Context, did syntax.DID) (*Op, string, error) {
	s, err := lastOp(ctx, d.db.Read, did)
	if err != nil {
		return nil, "", err
	}
	return s.op, s.cid, nil
}

// Ops returns the DID's operations, oldest first.
func (d *Server) Ops(ctx context.Context, did syntax.DID) ([]*Op, error) {
	rows, err := d.AuditLog(ctx, did)
	if err != nil {
		return nil, err
	}
	ops := make([]*Op, len(rows))
	for i, r := range rows {
		ops[i] = r.Operation
	}
	return ops, nil
}

// AuditLog returns the DID's operations with CIDs and timestamps, oldest first.
func (d *Server) AuditLog(ctx context.Context, did syntax.DID) ([]AuditEntry, error) {
	rows, err := queryOps(ctx, d.db.Read, `SELECT op, cid, nullified, created_at FROM plc_ops WHERE did = ? ORDER BY seq ASC`, did)
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = AuditEntry{DID: did, Operation: r.op, CID: r.cid, Nullified: r.nullified, CreatedAt: r.createdAt}
	}
	return out, nil
}

// current returns the DID's latest op, failing with ErrDIDTombstoned for a tombstone.
func (d *Server) current(ctx context.Context, did syntax.DID) (*Op, error) {
	op, _, err := d.LastOp(ctx, did)
	if err != nil {
		return nil, err
	}
	if op.IsTombstone() {
		return nil, fmt.Errorf("%w: %s", ErrDIDTombstoned, did)
	}
	return op, nil
}

// Document returns the DID's current DID document.
func (d *Server) Document(ctx context.Context, did syntax.DID) (*Document, error) {
	op, err := d.current(ctx, did)
	if err != nil {
		return nil, err
	}
	return DocFromOp(did, op)
}

// Data returns the DID's current state (the /data view).
func (d *Server) Data(ctx context.Context, did syntax.DID) (*Data, error) {
	op, err := d.current(ctx, did)
	if err != nil {
		return nil, err
	}
	return dataFromOp(did, op), nil
}
