package sqlitedb

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"syscall"
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

// A database holds keys and password hashes: it and its -wal/-shm files are 0600 under
// the usual 022 umask, and files left looser by an earlier run are tightened.
func TestOpenCreatesPrivateFiles(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.sqlite")
	migs := fstest.MapFS{"001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER);`)}}
	db, err := Open(ctx, path, migs, Options{})
	require.NoError(t, err)
	_, err = db.Write.Exec(`INSERT INTO a VALUES (1)`)
	require.NoError(t, err)
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(f)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), f)
	}
	require.NoError(t, db.Close())

	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(f); err == nil {
			require.NoError(t, os.Chmod(f, 0o644))
		}
	}
	db, err = Open(ctx, path, migs, Options{})
	require.NoError(t, err)
	defer db.Close()
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if info, err := os.Stat(f); err == nil {
			require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), f)
		}
	}
}

func TestIsUniqueViolation(t *testing.T) {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "u.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE people (id INTEGER PRIMARY KEY, handle TEXT UNIQUE, email TEXT UNIQUE, age INTEGER CHECK (age > 0))`,
		`INSERT INTO people (id, handle, email, age) VALUES (1, 'a', 'a@x', 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	insert := func(id int, handle, email string, age int) error {
		_, err := db.Exec(`INSERT INTO people (id, handle, email, age) VALUES (?, ?, ?, ?)`, id, handle, email, age)
		return err
	}
	for _, tc := range []struct {
		name    string
		err     error
		columns []string
		want    bool
	}{
		{"handle clash", insert(2, "a", "b@x", 1), []string{"people.handle"}, true},
		{"handle clash, asked about email", insert(2, "a", "b@x", 1), []string{"people.email"}, false},
		{"email clash", insert(2, "b", "a@x", 1), []string{"people.handle", "people.email"}, true},
		{"primary key", insert(1, "c", "c@x", 1), nil, true},
		{"check constraint is not unique", insert(3, "d", "d@x", 0), nil, false},
		{"not an error", nil, nil, false},
	} {
		if got := IsUniqueViolation(tc.err, tc.columns...); got != tc.want {
			t.Errorf("%s: IsUniqueViolation(%v, %v) = %v, want %v", tc.name, tc.err, tc.columns, got, tc.want)
		}
	}
}

// Readers map the file when asked to, every pooled connection alike; by default not.
func TestReaderMmap(t *testing.T) {
	ctx := context.Background()
	for _, want := range []int64{0, 64 << 20} {
		db, err := Open(ctx, filepath.Join(t.TempDir(), "m.sqlite"), fstest.MapFS{"001_a.sql": {Data: []byte(`CREATE TABLE a (x);`)}}, Options{ReaderMmapBytes: want})
		require.NoError(t, err)
		conns := make([]*sql.Conn, 3)
		for i := range conns {
			conns[i], err = db.Read.Conn(ctx)
			require.NoError(t, err)
			var got int64
			require.NoError(t, conns[i].QueryRowContext(ctx, `PRAGMA mmap_size`).Scan(&got))
			require.Equal(t, want, got)
			var mode string
			require.NoError(t, conns[i].QueryRowContext(ctx, `PRAGMA query_only`).Scan(&mode))
			require.Equal(t, "1", mode, "the DSN's settings still apply")
		}
		for _, c := range conns {
			c.Close()
		}
		require.NoError(t, db.Close())
	}
}
