package backup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-social/hearth/internal/sqlitedb"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

// fixture is a data dir shaped like Hearth's: a WAL database being written, blobs under
// blobs/<owner>/<cid>, a secret file.
type fixture struct {
	dir string
	db  *sqlitedb.DB
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "blobs", "tmp"), 0o700))
	db, err := sqlitedb.Open(context.Background(), filepath.Join(dir, "pds.sqlite"), nil, sqlitedb.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Write.Exec(`CREATE TABLE rows (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL)`)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "admin-password"), []byte("secret\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blobs", "tmp", "upload-123"), []byte("partial"), 0o600))
	return &fixture{dir: dir, db: db}
}

// blob stores data as a content-addressed blob of owner and returns its relative path.
func (f *fixture) blob(t *testing.T, owner string, data []byte) string {
	t.Helper()
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	require.NoError(t, err)
	rel := filepath.Join("blobs", owner, cid.NewCidV1(cid.Raw, mh).String())
	require.NoError(t, os.MkdirAll(filepath.Join(f.dir, filepath.Dir(rel)), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, rel), data, 0o600))
	return rel
}

func (f *fixture) insert(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		_, err := f.db.Write.Exec(`INSERT INTO rows (v) VALUES (?)`, fmt.Sprintf("row %d", i))
		require.NoError(t, err)
	}
}

// clock returns distinct, increasing times so backups made in one test get distinct names.
func clock() func() time.Time {
	t0 := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)) * time.Hour) }
}

func countRows(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var n int64
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM rows`).Scan(&n))
	return n
}

func TestCreateDuringWrites(t *testing.T) {
	f := newFixture(t)
	f.insert(t, 100)
	f.blob(t, "did_plc_a", []byte("image one"))
	to := filepath.Join(t.TempDir(), "backups")

	// A writer commits rows in transactions of 10 the whole time the snapshot runs.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var written atomic.Int64
	wg.Go(func() {
		for ctx.Err() == nil {
			tx, err := f.db.Write.Begin()
			if err != nil {
				return
			}
			for i := 0; i < 10; i++ {
				tx.Exec(`INSERT INTO rows (v) VALUES ('during')`)
			}
			if tx.Commit() == nil {
				written.Add(10)
			}
		}
	})
	var ms []*Manifest
	now := clock()
	for i := 0; i < 3; i++ {
		m, err := Create(context.Background(), Options{DataDir: f.dir, To: to, Version: "test", Now: now,
			Inspect: func(ctx context.Context, dbs map[string]string) (Stats, error) {
				return Stats{Records: countRows(t, dbs["pds.sqlite"])}, nil
			}})
		require.NoError(t, err)
		ms = append(ms, m)
	}
	stop()
	wg.Wait()
	require.Greater(t, written.Load(), int64(0), "the writer ran")
	require.Less(t, ms[0].Records, ms[2].Records, "later snapshots see later writes")
	m := ms[2]
	dir := filepath.Join(to, m.Name)
	// One consistent state: a whole number of the writer's transactions.
	require.Zero(t, (m.Records-100)%10, "rows in the snapshot: %d", m.Records)
	require.Equal(t, m.Records, countRows(t, filepath.Join(dir, "pds.sqlite")))

	paths := map[string]string{}
	for _, fl := range m.Files {
		paths[fl.Path] = fl.Kind
	}
	require.Equal(t, KindSQLite, paths["pds.sqlite"])
	require.Equal(t, KindFile, paths["admin-password"])
	require.Len(t, m.Files, 3, "database, blob and secret; no -wal, -shm or upload temp file: %v", paths)
	for _, p := range []string{"pds.sqlite-wal", "pds.sqlite-shm", "blobs/tmp"} {
		_, err := os.Stat(filepath.Join(dir, p))
		require.True(t, errors.Is(err, os.ErrNotExist), p)
	}
	// Private like the data dir.
	require.NoError(t, filepath.Walk(to, func(p string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		if info.IsDir() {
			require.Equal(t, os.FileMode(0o700), info.Mode().Perm(), p)
		} else {
			require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), p)
		}
		return nil
	}))
	_, err := Verify(context.Background(), dir)
	require.NoError(t, err)
}

func TestIncrementalBlobsAndKeep(t *testing.T) {
	f := newFixture(t)
	f.insert(t, 5)
	a := f.blob(t, "did_plc_a", []byte("first image"))
	to := filepath.Join(t.TempDir(), "backups")
	now := clock()
	opts := Options{DataDir: f.dir, To: to, Now: now}

	m1, err := Create(context.Background(), opts)
	require.NoError(t, err)
	require.Equal(t, 1, m1.BlobsCopied)
	require.Zero(t, m1.BlobsLinked)

	b := f.blob(t, "did_plc_b", []byte("second image"))
	m2, err := Create(context.Background(), opts)
	require.NoError(t, err)
	require.Equal(t, 1, m2.BlobsCopied, "only the new blob is copied")
	require.Equal(t, 1, m2.BlobsLinked, "the old one is linked")
	i1, err := os.Stat(filepath.Join(to, m1.Name, a))
	require.NoError(t, err)
	i2, err := os.Stat(filepath.Join(to, m2.Name, a))
	require.NoError(t, err)
	require.True(t, os.SameFile(i1, i2), "the same bytes are stored once")

	// Keep 2 of 3: the first backup, which holds the only copy of blob a's bytes, goes;
	// the kept ones still have it and verify.
	opts.Keep = 2
	m3, err := Create(context.Background(), opts)
	require.NoError(t, err)
	require.Equal(t, 2, m3.BlobsLinked)
	require.Zero(t, m3.BlobsCopied)
	all, err := List(to)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, []string{m2.Name, m3.Name}, []string{all[0].Name, all[1].Name})
	for _, m := range all {
		_, err := Verify(context.Background(), filepath.Join(to, m.Name))
		require.NoError(t, err, m.Name)
		data, err := os.ReadFile(filepath.Join(to, m.Name, a))
		require.NoError(t, err)
		require.Equal(t, "first image", string(data))
		_, err = os.Stat(filepath.Join(to, m.Name, b))
		require.NoError(t, err)
	}
}

func TestRestore(t *testing.T) {
	f := newFixture(t)
	f.insert(t, 42)
	blob := f.blob(t, "did_plc_a", []byte("an image"))
	to := filepath.Join(t.TempDir(), "backups")
	m, err := Create(context.Background(), Options{DataDir: f.dir, To: to, Now: clock()})
	require.NoError(t, err)
	src := filepath.Join(to, m.Name)

	t.Run("into a fresh dir", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "restored")
		var called bool
		_, err := Restore(context.Background(), RestoreOptions{From: src, DataDir: dst,
			AfterRestore: func(ctx context.Context, dir string, got *Manifest) error {
				called = dir == dst && got.Name == m.Name
				return nil
			}})
		require.NoError(t, err)
		require.True(t, called)
		require.EqualValues(t, 42, countRows(t, filepath.Join(dst, "pds.sqlite")))
		data, err := os.ReadFile(filepath.Join(dst, blob))
		require.NoError(t, err)
		require.Equal(t, "an image", string(data))
		i1, _ := os.Stat(filepath.Join(src, blob))
		i2, _ := os.Stat(filepath.Join(dst, blob))
		require.False(t, os.SameFile(i1, i2), "the data dir shares no inode with the backup")
		pw, err := os.Stat(filepath.Join(dst, "admin-password"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), pw.Mode().Perm())
	})

	t.Run("non-empty dir refused without force", func(t *testing.T) {
		dst := t.TempDir()
		stale := filepath.Join(dst, "pds.sqlite-wal")
		require.NoError(t, os.WriteFile(stale, []byte("an old WAL"), 0o600))
		_, err := Restore(context.Background(), RestoreOptions{From: src, DataDir: dst})
		require.ErrorIs(t, err, ErrNotEmpty)
		_, err = os.Stat(filepath.Join(dst, "pds.sqlite"))
		require.True(t, errors.Is(err, os.ErrNotExist), "nothing written")

		_, err = Restore(context.Background(), RestoreOptions{From: src, DataDir: dst, Force: true})
		require.NoError(t, err)
		_, err = os.Stat(stale)
		require.True(t, errors.Is(err, os.ErrNotExist), "the old WAL is gone, not replayed over the restored database")
		require.EqualValues(t, 42, countRows(t, filepath.Join(dst, "pds.sqlite")))
	})

	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string)
	}{
		{"blob byte changed", func(t *testing.T, dir string) {
			p := filepath.Join(dir, blob)
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			data[0] ^= 1
			require.NoError(t, os.WriteFile(p, data, 0o600))
		}},
		{"database truncated", func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(filepath.Join(dir, "pds.sqlite"), 4096))
		}},
		{"secret missing", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "admin-password")))
		}},
	} {
		t.Run("tampered: "+tc.name, func(t *testing.T) {
			copyDir := filepath.Join(t.TempDir(), m.Name)
			_, err := Restore(context.Background(), RestoreOptions{From: src, DataDir: copyDir}) // a copy to damage
			require.NoError(t, err)
			require.NoError(t, writeManifest(copyDir, m))
			tc.tamper(t, copyDir)
			dst := filepath.Join(t.TempDir(), "restored")
			_, err = Restore(context.Background(), RestoreOptions{From: copyDir, DataDir: dst,
				AfterRestore: func(context.Context, string, *Manifest) error { t.Fatal("ran after a failed verification"); return nil }})
			require.ErrorIs(t, err, ErrChecksum)
			_, err = os.Stat(dst)
			require.True(t, errors.Is(err, os.ErrNotExist), "nothing written before verification")
		})
	}

	t.Run("unsafe manifest path", func(t *testing.T) {
		dir := t.TempDir()
		bad := *m
		bad.Files = append([]File(nil), m.Files...)
		bad.Files[0].Path = "../outside"
		require.NoError(t, writeManifest(dir, &bad))
		_, err := Verify(context.Background(), dir)
		require.ErrorContains(t, err, "unsafe path")
	})
}

func TestSafeSeq(t *testing.T) {
	at := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		seq   int64
		rate  float64
		since time.Duration
		want  int64
	}{
		{"idle server: the minimum margin", 500, 0, 48 * time.Hour, 500 + MinSeqMargin},
		{"slow server: the minimum margin", 500, 10, 24 * time.Hour, 500 + MinSeqMargin},
		{"busy server: twice its rate since the snapshot", 7, 100_000, 10 * time.Hour, 7 + 2_000_000},
		{"clock before the snapshot", 7, 100_000, -time.Hour, 7 + MinSeqMargin},
		{"capped", 1 << 52, 1e18, time.Hour, 1 << 53},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manifest{Created: at, Stats: Stats{Seq: tc.seq, SeqPerHour: tc.rate}}
			require.Equal(t, tc.want, SafeSeq(m, at.Add(tc.since)))
		})
	}
}

func TestSchedulerRuns(t *testing.T) {
	f := newFixture(t)
	f.insert(t, 3)
	to := filepath.Join(t.TempDir(), "backups")
	s, err := NewScheduler(Options{DataDir: f.dir, To: to, Keep: 2}, 50*time.Millisecond)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	require.Eventually(t, func() bool {
		all, err := List(to)
		return err == nil && len(all) == 2
	}, 20*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	require.NoError(t, s.Close())
	all, err := List(to)
	require.NoError(t, err)
	require.LessOrEqual(t, len(all), 2, "keep 2")
	_, err = NewScheduler(Options{To: to}, 0)
	require.Error(t, err)
	sum := sha256.Sum256([]byte("secret\n"))
	for _, fl := range all[0].Files {
		if fl.Path == "admin-password" {
			require.Equal(t, fmt.Sprintf("%x", sum), fl.SHA256)
		}
	}
}
