package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"featurefs/blobstore"
	"featurefs/fusefs"
	"featurefs/gc"
	"featurefs/manifest"
)

func mountCommand() *cli.Command {
	flags := []cli.Flag{
		cacheRootFlag(),
		&cli.DurationFlag{Name: "gc-interval", Usage: "run GC this often while mounted (0 disables)", Value: 24 * time.Hour},
		&cli.StringFlag{Name: "footer-hash-threshold", Usage: "files larger than this get a footer hash instead of a full SHA-256", Value: "100MiB"},
		&cli.StringFlag{Name: "compression", Usage: "auto, zstd or none", Value: string(blobstore.Auto)},
		&cli.BoolFlag{Name: "allow-other", Usage: "let other users reach the mount (with default_permissions)"},
		&cli.StringFlag{Name: "sync", Usage: "manifest durability: full (survives power loss) or normal (survives a crash of the daemon)", Value: "full"},
		&cli.BoolFlag{Name: "passthrough", Usage: "let the kernel read raw blobs directly where it can", Value: true},
		&cli.BoolFlag{Name: "debug-fuse", Usage: "log every FUSE request", Hidden: true},
		verboseFlag(),
		jsonFlag(),
	}
	flags = append(flags, retentionFlags()...)
	return &cli.Command{
		Name:         "mount",
		Usage:        "serve the cache at MOUNTPOINT until unmounted or signalled",
		ArgsUsage:    "MOUNTPOINT",
		Flags:        flags,
		OnUsageError: commandUsageError,
		Action:       mountAction,
	}
}

func mountAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("mount takes exactly one MOUNTPOINT, got %d arguments", c.NArg())
	}
	log := newLogger(c)
	if os.Getenv("GOGC") == "" {
		// The daemon's live heap is mostly the inodes the kernel holds
		// (~0.6 KiB each: an ls -l of 100k entries keeps ~65 MB live until
		// the kernel forgets them), and the runtime's default lets the heap
		// grow to twice the live size. A quarter of that headroom keeps the
		// peak with 100k inodes held and 20 writers committing at ~121
		// instead of ~136 MiB (GOGC=50) for ~3% more CPU, the same commit
		// throughput: the request paths allocate little. A memory limit was
		// tried and dropped: with the live heap near it, collection never
		// stops.
		debug.SetGCPercent(25)
	}
	mnt, err := filepath.Abs(c.Args().First())
	if err != nil {
		return err
	}
	threshold, err := parseSize(c.String("footer-hash-threshold"))
	if err != nil || threshold <= 0 {
		return usageError("--footer-hash-threshold: want a positive size like 100MiB, got %q", c.String("footer-hash-threshold"))
	}
	compression := blobstore.Compression(c.String("compression"))
	switch compression {
	case blobstore.Auto, blobstore.Zstd, blobstore.None:
	default:
		return usageError("--compression: want auto, zstd or none, got %q", compression)
	}
	syncMode := c.String("sync")
	if syncMode != "full" && syncMode != "normal" {
		return usageError("--sync: want full or normal, got %q", syncMode)
	}
	gcOpts, err := gcOptions(c, log)
	if err != nil {
		return err
	}
	if err := prepareMountpoint(mnt, log); err != nil {
		return err
	}

	cache, err := openCache(c, true,
		manifest.Options{SyncNormal: syncMode == "normal", Logger: log, Failpoint: failpointFromEnv()},
		blobstore.Options{Compression: compression})
	if err != nil {
		return err
	}
	defer cache.Close()

	runGC := func(ctx context.Context, dryRun bool) (fusefs.GCResult, error) {
		opts := gcOpts
		opts.DryRun = dryRun
		report, err := gc.Run(ctx, cache.db, cache.store, opts)
		if err != nil {
			return fusefs.GCResult{}, err
		}
		data, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return fusefs.GCResult{}, err
		}
		return fusefs.GCResult{
			Report:       data,
			FilesDeleted: int64(report.Summary.TotalFilesDeleted),
			BytesFreed:   report.Summary.TotalBytesFreed,
		}, nil
	}
	fsys, err := fusefs.New(c.Context, fusefs.Config{
		Manifest:            cache.db,
		Store:               cache.store,
		FooterHashThreshold: threshold,
		Passthrough:         c.Bool("passthrough"),
		RunGC:               runGC,
		LastGCReport:        func() ([]byte, error) { return gc.LastReport(cache.root) },
		UID:                 uint32(os.Getuid()),
		GID:                 uint32(os.Getgid()),
		OrphanGrace:         gcOpts.OrphanGrace,
		Logger:              log,
		Failpoint:           failpointFromEnv(),
	})
	if err != nil {
		return err
	}
	defer fsys.Close()

	server, err := fusefs.Mount(mnt, fsys, fusefs.MountOptions{
		AllowOther: c.Bool("allow-other"),
		Direct:     os.Geteuid() == 0,
		Debug:      c.Bool("debug-fuse"),
		FsName:     cache.root,
	})
	if err != nil {
		return err
	}
	log.Info("mounted", "mountpoint", mnt, "cache_root", cache.root, "compression", compression)

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	served := make(chan struct{})
	go func() {
		server.Wait()
		close(served)
	}()
	go fsys.Watch(ctx, 500*time.Millisecond)
	go periodicGC(ctx, fsys, c.Duration("gc-interval"), log)
	unhealthy := make(chan error, 1)
	go watchHealth(ctx, cache.db, unhealthy)

	var exitErr error
	select {
	case <-served:
		log.Info("unmounted externally", "mountpoint", mnt)
	case <-c.Context.Done():
		log.Info("signal received, unmounting", "mountpoint", mnt)
		unmount(server, mnt, log)
		awaitRelease(served, mnt, log)
	case err := <-unhealthy:
		// Serving on without a manifest would show garbage; stop loudly.
		what := "manifest lost"
		if errors.Is(err, manifest.ErrCorrupt) {
			// Every lookup, listing and commit would fail from now on.
			what = "manifest damaged"
		}
		log.Error(what+", unmounting", "err", err)
		unmount(server, mnt, log)
		awaitRelease(served, mnt, log)
		exitErr = cli.Exit(fmt.Sprintf("%s: %v", what, err), exitIssues)
	}
	cancel()
	// Pending access times reach the manifest before it closes (a damaged
	// one refuses them: it is not written again).
	if err := cache.db.FlushAccess(context.Background()); err != nil && !errors.Is(err, manifest.ErrCorrupt) {
		log.Warn("flush access times", "err", err)
	}
	return exitErr
}

// gcOptions builds the GC settings shared by the daemon's runs.
func gcOptions(c *cli.Context, log *slog.Logger) (gc.Options, error) {
	ret, err := retention(c)
	if err != nil {
		return gc.Options{}, err
	}
	max, err := maxSize(c)
	if err != nil {
		return gc.Options{}, err
	}
	return gc.Options{
		Retention:   ret,
		MaxSize:     max,
		OrphanGrace: c.Duration("orphan-grace"),
		Logger:      log,
		Failpoint:   failpointFromEnv(),
	}, nil
}

func periodicGC(ctx context.Context, fsys *fusefs.FS, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			res, err := fsys.RunGC(ctx, false)
			if err != nil {
				log.Error("scheduled gc", "err", err)
				continue
			}
			log.Info("scheduled gc", "files_deleted", res.FilesDeleted, "bytes_freed", res.BytesFreed)
		}
	}
}

// watchHealth reports a manifest that is gone, replaced, unreadable or
// damaged (at once, when a query meets the damage). A
// cache root whose file system turned read-only is not reported: its rows
// are still right, so the daemon keeps serving reads while every write fails
// with EROFS (listed in .control/errors) until an operator repairs the file
// system and restarts it.
func watchHealth(ctx context.Context, db *manifest.DB, unhealthy chan<- error) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-db.Corrupted():
			unhealthy <- db.Healthy(ctx)
			return
		case <-t.C:
			if err := db.Healthy(ctx); err != nil && ctx.Err() == nil {
				unhealthy <- err
				return
			}
		}
	}
}

// unmount asks the kernel to detach the mount, lazily if files are still
// open (the kernel then finishes when the last one closes).
func unmount(server interface{ Unmount() error }, mnt string, log *slog.Logger) {
	err := server.Unmount()
	if err == nil {
		return
	}
	log.Warn("unmount busy, detaching lazily", "mountpoint", mnt, "err", err)
	if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
		if out, ferr := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); ferr != nil {
			log.Error("lazy unmount failed", "mountpoint", mnt, "err", err, "fusermount3", strings.TrimSpace(string(out)))
		}
	}
}

// releaseGrace is how long a detached mount may wait for its last open
// files to close before the daemon exits anyway.
const releaseGrace = 10 * time.Second

// awaitRelease waits for the kernel to release a (possibly lazily) detached
// mount. A process may hold a file open indefinitely; after releaseGrace the
// daemon exits regardless, which aborts the connection: those files fail
// with ENOTCONN, nothing they had not closed is committed, and their staging
// files are left for GC.
func awaitRelease(served <-chan struct{}, mnt string, log *slog.Logger) {
	select {
	case <-served:
	case <-time.After(releaseGrace):
		log.Warn("files still open on the detached mount; exiting without them", "mountpoint", mnt, "waited", releaseGrace)
	}
}

// prepareMountpoint creates the mountpoint if needed and clears a stale
// mount left by a daemon that was killed: its path fails with ENOTCONN.
func prepareMountpoint(mnt string, log *slog.Logger) error {
	if m, ok := mountAt(mnt); ok && strings.HasPrefix(m.fstype, "fuse") && !answers(mnt) {
		// A daemon killed while the kernel waited on it can leave a mount
		// that never answers (its last thread stuck in the kernel): only
		// aborting the connection frees it and every process blocked on it.
		log.Warn("aborting the connection of a FUSE mount that does not answer", "mountpoint", mnt, "connection", m.minor)
		if err := abortConnection(m.minor); err != nil {
			return fmt.Errorf("the mount at %s does not answer and could not be aborted (%v); as root run: echo 1 > /sys/fs/fuse/connections/%s/abort; umount -l %s", mnt, err, m.minor, mnt)
		}
	}
	_, err := os.Stat(mnt)
	if perr := probe(mnt); err == nil && errors.Is(perr, syscall.ENOTCONN) {
		err = perr
	}
	switch {
	case err == nil:
		if m, ok := mountAt(mnt); ok {
			return fmt.Errorf("%s is already a mount point (%s); unmount it first: fusermount3 -u %s", mnt, m.fstype, mnt)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			return fmt.Errorf("create mountpoint: %w", err)
		}
		return nil
	case errors.Is(err, syscall.ENOTCONN):
		log.Warn("clearing stale mount left by a dead daemon", "mountpoint", mnt)
		uerr := syscall.Unmount(mnt, syscall.MNT_DETACH)
		if uerr != nil {
			if out, ferr := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); ferr != nil {
				return fmt.Errorf("stale mount at %s (a killed daemon) could not be cleared (%v; %s); clear it with: fusermount3 -u -z %s   (or as root: umount -l %s)",
					mnt, uerr, strings.TrimSpace(string(out)), mnt, mnt)
			}
		}
		return nil
	default:
		return fmt.Errorf("mountpoint %s: %w", mnt, err)
	}
}

// mountInfo is a line of /proc/self/mountinfo.
type mountInfo struct {
	fstype string
	minor  string // the device minor: a FUSE mount's connection number
}

// mountAt reports whether path is itself a mount point, and what it is.
func mountAt(path string) (mountInfo, bool) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return mountInfo{}, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || unescapeMountPath(fields[4]) != path {
			continue
		}
		m := mountInfo{}
		if _, minor, ok := strings.Cut(fields[2], ":"); ok {
			m.minor = minor
		}
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				m.fstype = fields[i+1]
			}
		}
		return m, true
	}
	return mountInfo{}, false
}

// answers reports whether a probe of path returns (with any result) within
// two seconds; a mount whose daemon is gone but whose connection lives on
// blocks forever.
func answers(path string) bool {
	done := make(chan struct{})
	go func() {
		_ = probe(path)
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// probe looks up a name nobody has asked for in dir and returns the error
// that is not the expected ENOENT. A stat of a mount's root is no test of
// its daemon: the kernel answers it from its attribute cache for as long as
// the daemon's last reply allowed, dead daemon or not. A new name's lookup
// always reaches the daemon (ENOTCONN if it is gone).
func probe(dir string) error {
	_, err := os.Lstat(filepath.Join(dir, fmt.Sprintf(".fsmount-probe-%d-%d", os.Getpid(), time.Now().UnixNano())))
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// abortConnection aborts FUSE connection minor through the fusectl
// filesystem, mounting it where the system has not.
func abortConnection(minor string) error {
	const ctl = "/sys/fs/fuse/connections"
	abort := filepath.Join(ctl, minor, "abort")
	if _, err := os.Stat(abort); errors.Is(err, os.ErrNotExist) {
		if err := syscall.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("mount fusectl: %w", err)
		}
	}
	return os.WriteFile(abort, []byte("1"), 0)
}

// unescapeMountPath undoes the octal escapes of /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
