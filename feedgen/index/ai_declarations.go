package index

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/hearth-social/hearth/internal/aipref"
)

// Declaration collections the index keeps (internal/aipref reads them).
const (
	CollectionAIPreference = aipref.NSIDPreference
	CollectionUserIntents  = aipref.NSIDUserIntents
)

// AIRecord is a declaration record decoded as data; the index reads it with
// aipref.Parse, which needs the record key.
type AIRecord struct{ Data map[string]any }

// aiDeclaration stores or removes one declaration record and queues the author's
// account label for recomputation.
func (t *txn) aiDeclaration(did string, op *Op) error {
	uri := URI(did, op.Collection, op.RKey)
	if op.Action == ActionDelete {
		if _, err := t.exec(`DELETE FROM ai_declarations WHERE uri = ?`, uri); err != nil {
			return err
		}
		return t.enqueueAccountLabel(did)
	}
	r, ok := op.Record.(*AIRecord)
	if !ok {
		return fmt.Errorf("record is %T, want *AIRecord", op.Record)
	}
	d, ok := aipref.Parse(op.Collection, op.RKey, r.Data)
	if !ok { // declares nothing readable (any more): as if deleted
		if _, err := t.exec(`DELETE FROM ai_declarations WHERE uri = ?`, uri); err != nil {
			return err
		}
		return t.enqueueAccountLabel(did)
	}
	if _, err := t.exec(`INSERT INTO ai_declarations (uri, scope, target, training, inference, synthetic, embedding, indexed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (uri) DO UPDATE SET scope = excluded.scope, target = excluded.target, training = excluded.training,
			inference = excluded.inference, synthetic = excluded.synthetic, embedding = excluded.embedding, indexed_at = excluded.indexed_at`,
		uri, d.Scope, d.Target, tri(d.Prefs.Training), tri(d.Prefs.Inference), tri(d.Prefs.Synthetic), tri(d.Prefs.Embedding), t.now); err != nil {
		return err
	}
	return t.enqueueAccountLabel(did)
}

// enqueueAccountLabel queues did's account label when it has declarations or a label.
func (t *txn) enqueueAccountLabel(did string) error {
	lo, hi := RepoRange(did)
	_, err := t.exec(`INSERT INTO label_outbox (uri) SELECT ?1
		WHERE EXISTS (SELECT 1 FROM ai_declarations WHERE uri >= ?2 AND uri < ?3) OR EXISTS (SELECT 1 FROM labeled_posts WHERE uri = ?1)
		ON CONFLICT (uri) DO UPDATE SET gen = gen + 1`, did, lo, hi)
	return err
}

func tri(b *bool) any {
	if b == nil {
		return nil
	}
	if *b {
		return 1
	}
	return 0
}

// AIDeclarations returns an author's declarations as stored.
func (ix *Index) AIDeclarations(ctx context.Context, did string) ([]aipref.Declaration, error) {
	return aiDeclarations(ctx, ix.db.Read, did)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func aiDeclarations(ctx context.Context, q querier, did string) ([]aipref.Declaration, error) {
	lo, hi := RepoRange(did)
	rows, err := q.QueryContext(ctx, `SELECT uri, scope, target, training, inference, synthetic, embedding FROM ai_declarations
		WHERE uri >= ? AND uri < ? ORDER BY uri LIMIT 100`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("feed index: AI declarations: %w", err)
	}
	defer rows.Close()
	var out []aipref.Declaration
	for rows.Next() {
		var uri string
		var d aipref.Declaration
		var tr, inf, syn, emb sql.NullBool
		if err := rows.Scan(&uri, &d.Scope, &d.Target, &tr, &inf, &syn, &emb); err != nil {
			return nil, err
		}
		rest := strings.TrimPrefix(uri, lo)
		d.Collection, d.RKey, _ = strings.Cut(rest, "/")
		d.Prefs = aipref.Prefs{Training: ptr(tr), Inference: ptr(inf), Synthetic: ptr(syn), Embedding: ptr(emb)}
		out = append(out, d)
	}
	return out, rows.Err()
}

func ptr(b sql.NullBool) *bool {
	if !b.Valid {
		return nil
	}
	v := b.Bool
	return &v
}

// deniesTraining reports whether an account's declarations deny AI training and the
// account is not hidden (what the no-ai-training account label says).
func deniesTraining(ctx context.Context, q querier, did string) (bool, error) {
	decls, err := aiDeclarations(ctx, q, did)
	if err != nil || len(decls) == 0 {
		return false, err
	}
	rows, err := q.QueryContext(ctx, `SELECT active FROM accounts WHERE did = ?`, did)
	if err != nil {
		return false, err
	}
	active := true // an account the index has no status for is taken as active
	for rows.Next() {
		if err := rows.Scan(&active); err != nil {
			rows.Close()
			return false, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	tr := aipref.Effective(decls, "").Training
	return active && tr != nil && !*tr, nil
}
