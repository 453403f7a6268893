//go:build linux

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
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"featurefs/blobstore"
	"featurefs/cache"
	"featurefs/compact"
	"featurefs/fullhash"
	"featurefs/fusefs"
	"featurefs/gc"
	"featurefs/hashing"
	"featurefs/manifest"
)

func mountCommand() *cli.Command {
	flags := []cli.Flag{
		cacheRootFlag(),
		&cli.DurationFlag{Name: "gc-interval", Usage: "run GC this often while mounted (0 disables)", Value: 24 * time.Hour},
		&cli.StringFlag{Name: "footer-hash-threshold", Usage: "files larger than this get a footer hash instead of a full SHA-256", Value: humanSize(hashing.DefaultFooterThreshold)},
		&cli.StringFlag{Name: "compression", Usage: "auto, zstd or none", Value: string(blobstore.Auto)},
		&cli.DurationFlag{
			Name: "compress-after",
			Usage: "with --compression auto, commit raw and compress an entry that would shrink once it has not " +
				"been opened for this long (0 compresses at commit)",
			Value: compact.DefaultAfter,
		},
		&cli.BoolFlag{Name: "allow-other", Usage: "let other users reach the mount (with default_permissions)"},
		&cli.StringFlag{Name: "sync", Usage: "manifest durability: full (survives power loss) or normal (survives a crash of the daemon)", Value: "full"},
		&cli.BoolFlag{Name: "passthrough", Usage: "let the kernel read raw blobs directly where it can", Value: true},
		&cli.BoolFlag{Name: "background", Usage: "start the daemon detached and return once the mount serves (exit 1 with the daemon's error if it does not)"},
		&cli.StringFlag{Name: "log-file", Usage: "with --background: append the daemon's log to `FILE` (default: fsmount.log in the cache root)"},
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
	if c.Bool("background") && os.Getenv(daemonEnv) == "" {
		return mountInBackground(c)
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
	// Two daemons started at once on a dead mountpoint would both clear it
	// and both mount, stacked. The lock makes the second wait until the
	// first serves; then it finds a live mount and refuses.
	unlock, err := lockMountpoint(c.Context, mnt)
	if err != nil {
		return err
	}
	defer unlock()
	if err := prepareMountpoint(mnt, log); err != nil {
		return err
	}

	cache, err := openCacheWith(c, cache.Options{
		Create:              true,
		Manifest:            manifest.Options{SyncNormal: syncMode == "normal", Logger: log, Failpoint: failpointFromEnv()},
		Blobs:               blobstore.Options{Compression: compression, DeferCompression: compression == blobstore.Auto && c.Duration("compress-after") > 0},
		FooterHashThreshold: threshold,
	})
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
		Cache:        cache.Cache,
		Passthrough:  c.Bool("passthrough"),
		RunGC:        runGC,
		LastGCReport: func() ([]byte, error) { return gc.LastReport(cache.root) },
		UID:          uint32(os.Getuid()),
		GID:          uint32(os.Getgid()),
		OrphanGrace:  gcOpts.OrphanGrace,
		Logger:       log,
		Failpoint:    failpointFromEnv(),
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
	own, err := ownMount(mnt)
	if err != nil {
		_ = server.Unmount()
		return fmt.Errorf("mount %s: %w", mnt, err)
	}
	unlock()
	log.Info("mounted", "mountpoint", mnt, "cache_root", cache.root, "compression", compression)
	signalReady()

	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	served := make(chan struct{})
	go func() {
		server.Wait()
		close(served)
	}()
	go fsys.Watch(ctx, fusefs.DefaultWatchInterval)
	go periodicGC(ctx, fsys, c.Duration("gc-interval"), log)
	go fullhash.New(cache.db, cache.store, log).Run(ctx, fullhash.DefaultInterval)
	if after := c.Duration("compress-after"); compression == blobstore.Auto && after > 0 {
		// Look a few times per period, at most once a minute.
		go compact.New(cache.db, cache.store, cache.Retirer(), after, nil, log).Run(ctx, max(min(after/4, time.Minute), 100*time.Millisecond))
	}
	unhealthy := make(chan error, 1)
	go watchHealth(ctx, cache.db, unhealthy)

	var exitErr error
	select {
	case <-served:
		log.Info("unmounted externally", "mountpoint", mnt)
	case <-c.Context.Done():
		log.Info("signal received, unmounting", "mountpoint", mnt)
		unmount(server, own, mnt, log)
		awaitRelease(served, mnt, log)
	case err := <-unhealthy:
		// Serving on without a manifest would show garbage; stop loudly.
		what := "manifest lost"
		if errors.Is(err, manifest.ErrCorrupt) {
			// Every lookup, listing and commit would fail from now on.
			what = "manifest damaged"
		}
		log.Error(what+", unmounting", "err", err)
		unmount(server, own, mnt, log)
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

// unmount asks the kernel to detach the daemon's own mount, lazily if files
// are still open (the kernel then finishes when the last one closes).
// Unmounting goes by path and reaches the topmost mount there, so it is done
// only while that is ours. A mount someone stacked on top is left alone: the
// daemon then aborts its own connection, which ends its serving loops, and
// names what is left.
func unmount(server interface{ Unmount() error }, own mountInfo, mnt string, log *slog.Logger) {
	switch state := own.state(); state {
	case mountGone:
		// Unmounted by someone else meanwhile: the serving loops end alone.
		return
	case mountCovered:
		log.Error("another mount covers this daemon's mount; leaving it alone and disconnecting this one",
			"mountpoint", mnt, "connection", own.minor,
			"clear_with", fmt.Sprintf("once the mount on top is gone: umount -l %s", mnt))
		if err := abortConnection(own.minor); err != nil {
			log.Error("abort connection", "connection", own.minor, "err", err)
		}
		return
	}
	err := server.Unmount()
	if err == nil {
		return
	}
	if own.state() != mountTop {
		log.Warn("unmount failed and the mount is no longer on top; not detaching", "mountpoint", mnt, "err", err)
		if err := abortConnection(own.minor); err != nil {
			log.Error("abort connection", "connection", own.minor, "err", err)
		}
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
	id, parent string // mount IDs: a mount stacked on another has it as parent
	dev        string // major:minor
	minor      string // the device minor: a FUSE mount's connection number
	path       string
	fstype     string
}

// mounts lists /proc/self/mountinfo, parents before children.
func mounts() ([]mountInfo, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var all []mountInfo
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		m := mountInfo{id: fields[0], parent: fields[1], dev: fields[2], path: unescapeMountPath(fields[4])}
		_, m.minor, _ = strings.Cut(fields[2], ":")
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				m.fstype = fields[i+1]
			}
		}
		all = append(all, m)
	}
	return all, nil
}

// mountAt reports whether path is itself a mount point, and what the
// first mount there is.
func mountAt(path string) (mountInfo, bool) {
	all, _ := mounts()
	for _, m := range all {
		if m.path == path {
			return m, true
		}
	}
	return mountInfo{}, false
}

// ownMount finds the mount just made at mnt: the one whose device is the
// one a stat of mnt reaches now.
func ownMount(mnt string) (mountInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		return mountInfo{}, err
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	all, err := mounts()
	if err != nil {
		return mountInfo{}, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].path == mnt && all[i].dev == dev {
			return all[i], nil
		}
	}
	return mountInfo{}, fmt.Errorf("no mount of device %s at %s in /proc/self/mountinfo", dev, mnt)
}

// Where a daemon's own mount stands.
type mountState int

const (
	mountTop     mountState = iota // mounted, and what its path reaches
	mountCovered                   // mounted, with another mount on top
	mountGone                      // no longer mounted
)

func (own mountInfo) state() mountState {
	all, err := mounts()
	if err != nil {
		// Without the table, trust the path as before.
		return mountTop
	}
	found := false
	for _, m := range all {
		if m.id == own.id {
			found = true
		}
	}
	if !found {
		return mountGone
	}
	// Covered by a mount on its root, or on top of such a mount.
	ids := map[string]bool{own.id: true}
	covered := false
	for _, m := range all {
		if ids[m.parent] && m.path == own.path {
			ids[m.id], covered = true, true
		}
	}
	if covered {
		return mountCovered
	}
	return mountTop
}

// lockMountpoint serialises fsmount mounts of mnt with an exclusive flock
// on its parent directory. Not on the mountpoint itself: a stale mount
// there fails every open with ENOTCONN. Nor on a file of the cache root: two
// cache roots may race for one mountpoint. The returned function drops the
// lock and may be called more than once.
func lockMountpoint(ctx context.Context, mnt string) (func(), error) {
	parent := filepath.Dir(mnt)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("create the mountpoint's parent: %w", err)
	}
	fd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock mountpoint %s: open %s: %w", mnt, parent, err)
	}
	unlock := sync.OnceFunc(func() { unix.Close(fd) })
	// Polled so a signal ends the wait; a daemon holds the lock only while
	// it clears a stale mount and mounts, a few seconds at most.
	deadline := time.Now().Add(time.Minute)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return unlock, nil
		case errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.EOPNOTSUPP):
			// A parent on a file system without locks (some network
			// ones): mount unserialised, as before.
			return unlock, nil
		default:
			unlock()
			return nil, fmt.Errorf("lock mountpoint %s: flock %s: %w", mnt, parent, err)
		}
		if time.Now().After(deadline) {
			unlock()
			return nil, fmt.Errorf("another fsmount has been mounting at %s for over a minute (it holds the lock on %s)", mnt, parent)
		}
		select {
		case <-ctx.Done():
			unlock()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
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
