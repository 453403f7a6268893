package gc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"featurefs/cache"
)

// LockFile (cache.GCLockFile) is the file in the cache root whose exclusive
// lock a run holds; runs on one cache root take turns.
const LockFile = cache.GCLockFile

// runLock is a held GC lock.
type runLock struct{ f *os.File }

// acquireLock takes the cache root's GC lock, waiting while another run (in
// this or any other process) holds it. The operating system drops the lock
// when its holder exits, so a crashed run never blocks the next one. The
// wait polls rather than blocking in the kernel, so that ctx can end it.
func acquireLock(ctx context.Context, root string, log *slog.Logger) (*runLock, error) {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("gc lock: %w", err)
	}
	// Opened through the root so a planted symlink cannot point it elsewhere.
	f, err := rt.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o600)
	rt.Close()
	if err != nil {
		return nil, fmt.Errorf("gc lock %s: %w", filepath.Join(root, LockFile), err)
	}
	// The lock file outlives versions; one made open to others is closed.
	if err := makePrivate(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("gc lock %s: %w", f.Name(), err)
	}
	// Short polls: a waiting run must not lose every race for the lock to
	// a daemon that runs GC again and again.
	const maxWait = 50 * time.Millisecond
	wait := 10 * time.Millisecond
	for waited := false; ; waited = true {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("gc lock %s: %w", f.Name(), err)
		}
		if ok {
			if waited {
				log.Info("gc lock acquired", "lock", f.Name())
			}
			return &runLock{f: f}, nil
		}
		if !waited {
			log.Info("gc waiting for another run to finish", "lock", f.Name())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("gc lock %s: %w", f.Name(), ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, maxWait)
	}
}

// release drops the lock; closing the file alone would too.
func (l *runLock) release() {
	_ = unlock(l.f)
	_ = l.f.Close()
}

// makePrivate removes group and other permissions from f, leaving the
// owner's: what featurefs keeps in a cache root is its owner's alone.
func makePrivate(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return f.Chmod(perm &^ 0o077)
	}
	return nil
}
