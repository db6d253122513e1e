package sqlitedb

import (
	"context"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestOpenMigratesOnceAndUsesWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.sqlite")
	migs := fstest.MapFS{
		"001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER);`)},
		"002_b.sql": {Data: []byte(`INSERT INTO a VALUES (1);`)},
	}
	for i := 0; i < 2; i++ { // reopening must not re-run migrations
		db, err := Open(ctx, path, migs, Options{BackgroundCheckpoint: true})
		require.NoError(t, err)
		var n int
		require.NoError(t, db.Read.QueryRow(`SELECT count(*) FROM a`).Scan(&n))
		require.Equal(t, 1, n)
		var mode, sync string
		require.NoError(t, db.Write.QueryRow(`PRAGMA journal_mode`).Scan(&mode))
		require.NoError(t, db.Write.QueryRow(`PRAGMA synchronous`).Scan(&sync))
		require.Equal(t, "wal", mode)
		require.Equal(t, "2", sync, "FULL by default")
		_, err = db.Read.Exec(`INSERT INTO a VALUES (2)`)
		require.Error(t, err, "the read pool is read-only")
		require.NoError(t, db.Checkpoint(ctx, true))
		require.NoError(t, db.Close())
	}

	bad := fstest.MapFS{"001_bad.sql": {Data: []byte(`CREATE TABLE (`)}}
	_, err := Open(ctx, filepath.Join(t.TempDir(), "y.sqlite"), bad, Options{})
	require.ErrorContains(t, err, "001_bad.sql")
}
