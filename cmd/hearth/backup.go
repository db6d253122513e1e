package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/hearth-social/hearth/internal/backup"
	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/store"
	"github.com/urfave/cli/v2"
)

// pdsDatabase is the PDS database's path inside the data dir (pds.New opens it there).
const pdsDatabase = "pds.sqlite"

// backupOptions are the options every backup of a data dir runs with: the PDS
// database's stats read from its snapshot.
func backupOptions(dataDir, to string, keep int, log *slog.Logger) backup.Options {
	return backup.Options{
		DataDir: dataDir, To: to, Keep: keep, Version: version, Log: log,
		Inspect: func(ctx context.Context, dbs map[string]string) (backup.Stats, error) {
			p, ok := dbs[pdsDatabase]
			if !ok {
				return backup.Stats{}, fmt.Errorf("no %s in the data dir", pdsDatabase)
			}
			st, err := store.InspectSnapshot(ctx, p)
			return backup.Stats{Seq: st.Seq, SeqPerHour: st.SeqPerHour, Accounts: st.Accounts, Records: st.Records, Blobs: st.Blobs}, err
		},
	}
}

func backupCommand() *cli.Command {
	dataDir := &cli.StringFlag{Name: "data-dir", Value: "./data", Usage: "the data dir to back up (may be in use by hearth serve)", EnvVars: []string{"HEARTH_DATA_DIR"}}
	// Not Required: urfave/cli checks a command's required flags before it hands over to
	// a subcommand, so `backup status` would need it twice.
	to := func() cli.Flag {
		return &cli.StringFlag{Name: "to", Usage: "folder that holds the backups, each one a timestamped subfolder (required)"}
	}
	needTo := func(cctx *cli.Context) (string, error) {
		if cctx.String("to") == "" {
			return "", errors.New("--to is required: the folder that holds the backups")
		}
		return cctx.String("to"), nil
	}
	return &cli.Command{
		Name: "backup",
		Usage: "back up the data dir (databases by SQLite's online backup, blobs incrementally, keys) into a new " +
			"timestamped folder under --to; safe while hearth serve runs",
		Flags: []cli.Flag{dataDir, to(),
			&cli.IntFlag{Name: "keep", Usage: "then remove the oldest backups beyond the newest N (0: keep all)"},
		},
		Action: func(cctx *cli.Context) error {
			log, err := newLogger(cctx)
			if err != nil {
				return err
			}
			dir, err := needTo(cctx)
			if err != nil {
				return err
			}
			if cctx.Int("keep") < 0 {
				return errors.New("--keep must be 0 (keep all) or a positive number")
			}
			m, err := backup.Create(cctx.Context, backupOptions(cctx.String("data-dir"), dir, cctx.Int("keep"), log))
			if err != nil {
				return err
			}
			fmt.Fprintf(cctx.App.Writer, "%s: seq %d, %d accounts, %d records, %d blobs (%d copied, %d linked), %d bytes\n",
				filepath.Join(dir, m.Name), m.Seq, m.Accounts, m.Records, m.Blobs, m.BlobsCopied, m.BlobsLinked, m.Bytes)
			return nil
		},
		Subcommands: []*cli.Command{{
			Name:  "status",
			Usage: "list the backups in --to, newest first, from their manifests",
			Flags: []cli.Flag{to(), &cli.IntFlag{Name: "limit", Value: 10, Usage: "how many to list"}},
			Action: func(cctx *cli.Context) error {
				dir, err := needTo(cctx)
				if err != nil {
					return err
				}
				all, err := backup.List(dir)
				if err != nil {
					return err
				}
				if len(all) == 0 {
					return fmt.Errorf("no backups in %s", dir)
				}
				w := tabwriter.NewWriter(cctx.App.Writer, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "BACKUP\tAGE\tVERSION\tSEQ\tACCOUNTS\tRECORDS\tBLOBS\tCOPIED\tLINKED\tBYTES")
				for i := len(all) - 1; i >= 0 && len(all)-i <= cctx.Int("limit"); i-- {
					m := all[i]
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", m.Name, time.Since(m.Created).Round(time.Second),
						m.HearthVersion, m.Seq, m.Accounts, m.Records, m.Blobs, m.BlobsCopied, m.BlobsLinked, m.Bytes)
				}
				return w.Flush()
			},
		}},
	}
}

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name: "restore",
		Usage: "restore a backup folder (DIR/<time>) into a data dir after verifying every checksum; the restored " +
			"server's firehose continues above any seq the old one may have served",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "the backup folder, e.g. /backups/20261204T030000.000Z", Required: true},
			&cli.StringFlag{Name: "data-dir", Value: "./data", Usage: "where to restore (must be empty or absent unless --force; hearth serve must not run on it)", EnvVars: []string{"HEARTH_DATA_DIR"}},
			&cli.BoolFlag{Name: "force", Usage: "replace what the data dir holds"},
			&cli.Int64Flag{Name: "seq-floor", Usage: "continue the firehose above this seq instead of the computed safe value (e.g. the seq a relay's getHostStatus reports); never below the backup's own"},
		},
		Action: func(cctx *cli.Context) error {
			log, err := newLogger(cctx)
			if err != nil {
				return err
			}
			var from, to int64
			var resynced int
			m, err := backup.Restore(cctx.Context, backup.RestoreOptions{
				From: cctx.String("from"), DataDir: cctx.String("data-dir"), Force: cctx.Bool("force"), Log: log,
				AfterRestore: func(ctx context.Context, dir string, m *backup.Manifest) error {
					to = backup.SafeSeq(m, time.Now())
					if cctx.IsSet("seq-floor") {
						to = max(cctx.Int64("seq-floor"), m.Seq)
					}
					if from, err = store.RaiseSeq(ctx, filepath.Join(dir, pdsDatabase), to); err != nil {
						return err
					}
					resynced, err = pds.AnnounceResync(ctx, filepath.Join(dir, pdsDatabase), log)
					return err
				},
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cctx.App.Writer, "restored %s into %s: %d accounts, %d records, %d blobs; firehose seq %d, continues above %d\n",
				m.Name, cctx.String("data-dir"), m.Accounts, m.Records, m.Blobs, from, max(from, to))
			fmt.Fprintf(cctx.App.Writer, "announced %d repositories with #sync, so relays take them as restored\n", resynced)
			return nil
		},
	}
}

// serveBackupFlags are serve's scheduled-backup flags.
func serveBackupFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "backup-dir", Usage: "make scheduled backups into this folder (off when unset)", EnvVars: []string{"HEARTH_BACKUP_DIR"}},
		&cli.DurationFlag{Name: "backup-every", Value: 24 * time.Hour, Usage: "how often the scheduled backup runs", EnvVars: []string{"HEARTH_BACKUP_EVERY"}},
		&cli.IntFlag{Name: "backup-keep", Value: 7, Usage: "scheduled backups kept (the oldest beyond it are removed; 0: keep all)", EnvVars: []string{"HEARTH_BACKUP_KEEP"}},
	}
}

// startScheduledBackups adds the backup scheduler to serve's runtime when --backup-dir
// is set.
func startScheduledBackups(cctx *cli.Context, log *slog.Logger, dataDir string, rt *runtime) error {
	dir := cctx.String("backup-dir")
	if dir == "" {
		return nil
	}
	if cctx.Int("backup-keep") < 0 {
		return errors.New("--backup-keep (HEARTH_BACKUP_KEEP) must be 0 (keep all) or a positive number")
	}
	s, err := backup.NewScheduler(backupOptions(dataDir, dir, cctx.Int("backup-keep"), log.With("component", "backup")), cctx.Duration("backup-every"))
	if err != nil {
		return fmt.Errorf("--backup-every (HEARTH_BACKUP_EVERY): %w", err)
	}
	rt.work("scheduled backups", s.Run)
	rt.closeLast("scheduled backups", s.Close)
	fmt.Fprintf(cctx.App.Writer, "  backups:        %s every %s\n", dir, cctx.Duration("backup-every"))
	return nil
}
