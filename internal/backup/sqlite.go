package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/hearth-social/hearth/internal/datadir"
	"github.com/mattn/go-sqlite3"
)

// snapshotSQLite copies the live database src into the new file dst with SQLite's
// online backup API (sqlite3_backup_step(-1): every page in one read transaction, so the
// copy is one consistent state while the server keeps writing to its WAL), then makes
// dst a self-contained rollback-journal file and checks it.
func snapshotSQLite(ctx context.Context, src, dst string) error {
	if err := datadir.CreatePrivate(dst); err != nil {
		return err
	}
	// The source is opened read-write without a journal mode (it stays WAL) but only read:
	// a read-only open of a WAL database cannot create the -shm it may need.
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	srcDB, err := sql.Open("sqlite3", "file:"+src+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer srcDB.Close()
	dstDB, err := sql.Open("sqlite3", "file:"+dst+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer dstDB.Close()
	srcConn, err := srcDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer srcConn.Close()
	dstConn, err := dstDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer dstConn.Close()
	err = dstConn.Raw(func(dc any) error {
		return srcConn.Raw(func(sc any) error {
			d, ok1 := dc.(*sqlite3.SQLiteConn)
			s, ok2 := sc.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("not a go-sqlite3 connection")
			}
			b, err := d.Backup("main", s, "main")
			if err != nil {
				return err
			}
			done, err := b.Step(-1)
			if ferr := b.Finish(); err == nil {
				err = ferr
			}
			if err == nil && !done {
				err = errors.New("backup did not complete")
			}
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("online backup: %w", err)
	}
	// The copied header says WAL; a snapshot is one file, so switch it to a rollback
	// journal (the server turns WAL back on when it opens the restored file).
	var mode string
	if err := dstConn.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "delete") {
		return fmt.Errorf("snapshot journal mode is %q", mode)
	}
	var check string
	if err := dstConn.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		return err
	}
	if check != "ok" {
		return fmt.Errorf("snapshot failed its check: %s", check)
	}
	if err := dstConn.Close(); err != nil {
		return err
	}
	if err := dstDB.Close(); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
