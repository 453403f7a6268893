package fusefs

import (
	"context"
	"fmt"
	"io"
	"sync"

	"featurefs/blobstore"
	"featurefs/hashing"
)

// content is the bytes of a file being written: a staged file in the cache
// root, or, until the first write, a committed version to copy from (an
// O_RDWR open without O_TRUNC modifies a copy, never the immutable blob).
type content struct {
	fsys *FS

	mu     sync.Mutex
	staged *blobstore.Staged
	size   int64
	// prefix hashes the staged bytes as they are appended, so the commit
	// of a file written front to back need not read it again; nil once a
	// write or truncate went below what it covers (the commit re-reads).
	prefix *hashing.Prefix
	// base is the committed version the content starts from while nothing
	// is staged; nil for an empty file.
	base *version
	// mtimeNS is a modification time set by the writer (cp -p, rsync -a);
	// zero means "the commit time".
	mtimeNS int64
	// dirty is set by writes and truncates since the last commit, so a
	// second close of a dup'd descriptor commits nothing.
	dirty bool
	// written is set by any write or truncate, ever, even one that failed.
	written bool
	// failed is the first write or truncate error: the bytes are not what
	// the writer meant, so close reports it (ENOSPC, say) instead of
	// validating a hole-riddled file.
	failed error
}

func newContent(fsys *FS, base *version, truncate bool) *content {
	c := &content{fsys: fsys}
	if truncate || base == nil {
		// A new, empty version: even with no write, closing it commits (and
		// fails validation), as truncating a file on disk would.
		c.dirty = true
		return c
	}
	c.base = base
	c.size = base.size
	c.mtimeNS = base.modTimeNS
	return c
}

// stage makes sure there is a staged file holding the current bytes. Must
// hold c.mu.
func (c *content) stage(ctx context.Context) error {
	if c.staged != nil {
		return nil
	}
	st, err := c.fsys.store.CreateStaged()
	if err != nil {
		return fmt.Errorf("create staging file: %w", err)
	}
	c.prefix = nil
	if c.base != nil && c.size > 0 {
		// Rare (an O_RDWR edit of an entry): the commit hashes it afresh.
		if err := c.copyBase(ctx, st); err != nil {
			st.Close()
			return err
		}
	} else {
		c.prefix = c.newPrefix()
	}
	c.staged = st
	c.base = nil
	return nil
}

func (c *content) copyBase(ctx context.Context, st *blobstore.Staged) error {
	r, err := c.fsys.store.OpenBlob(c.base.path())
	if err != nil {
		return fmt.Errorf("open %s for copy: %w", c.base.path(), err)
	}
	defer r.Close()
	src := io.NewSectionReader(r, 0, c.size)
	if _, err := io.Copy(st.File(), readerWithContext{ctx, src}); err != nil {
		return fmt.Errorf("copy %s into staging: %w", c.base.path(), err)
	}
	return nil
}

// errHead refuses a write that would put anything but the magic at the
// start of a parquet file.
var errHead = fmt.Errorf("a parquet file starts with PAR1: %w", hashing.ErrNotParquet)

// writeEntry writes p to an entry's content: at off, or at the end when
// appending (the daemon, not the kernel's cached size, knows where the end
// of a continued pending name is). A write that puts anything but PAR1 at
// offset 0 is refused with errHead before anything changes, so that the
// writer (a shell's echo) hears of it at once instead of at a close it may
// not check.
func (c *content) writeEntry(ctx context.Context, p []byte, off int64, appending bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if appending {
		off = c.size
	}
	if headMismatch(p, off) {
		// Nothing is written, but the file is not what its writer meant:
		// its close fails too, and leaves no pending name behind.
		c.written, c.dirty = true, true
		if c.failed == nil {
			c.failed = errHead
		}
		return 0, errHead
	}
	n, err := c.writeAtLocked(ctx, p, off)
	if err != nil && c.failed == nil {
		c.failed = err
	}
	return n, err
}

func (c *content) writeAt(ctx context.Context, p []byte, off int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.writeAtLocked(ctx, p, off)
	if err != nil && c.failed == nil {
		c.failed = err
	}
	return n, err
}

func (c *content) writeAtLocked(ctx context.Context, p []byte, off int64) (int, error) {
	// Even a write that fails touched the file: its close reports the failure.
	c.written = true
	if err := c.stage(ctx); err != nil {
		return 0, err
	}
	n, err := c.staged.File().WriteAt(p, off)
	c.track(p[:n], off)
	c.staged.Wrote(ctx, off, int64(n))
	if end := off + int64(n); end > c.size {
		c.size = end
	}
	if n > 0 {
		c.dirty = true
	}
	return n, err
}

// maxPrefixHash bounds how much of a file is hashed as it is written. Past
// it a file may well end above the footer-hash threshold, which makes what
// was hashed wasted work on the write path (hashing up to 100 MiB would cost
// a 1 GiB cp some 70 ms); a file that stops between the two is hashed in
// full at commit.
const maxPrefixHash = 32 << 20

func (c *content) newPrefix() *hashing.Prefix {
	return hashing.NewPrefix(min(c.fsys.cache.FooterHashThreshold(), maxPrefixHash))
}

// track feeds the prefix hash with b, just written at off. Must hold c.mu.
func (c *content) track(b []byte, off int64) {
	switch {
	case c.prefix == nil:
	case off == c.prefix.Len():
		if !c.prefix.Append(b) {
			c.prefix = nil
		}
	case off < c.prefix.Len():
		// Bytes already hashed may have changed.
		c.prefix = nil
	}
}

// hash computes the staged file's hash, from the bytes the prefix hash has
// already seen where it can. Must hold c.mu.
func (c *content) hash(ctx context.Context, r io.ReaderAt, size, threshold int64) (hashing.Sum, error) {
	if c.prefix == nil {
		return hashing.Hash(ctx, r, size, threshold)
	}
	// On a read error the prefix drops its own state and reads in full
	// next time.
	return c.prefix.Hash(ctx, r, size, threshold)
}

func (c *content) truncate(ctx context.Context, size int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.truncateLocked(ctx, size)
	if err != nil && c.failed == nil {
		c.failed = err
	}
	return err
}

func (c *content) truncateLocked(ctx context.Context, size int64) error {
	c.written = true
	if size == 0 && c.staged == nil {
		// Nothing to copy when the result is empty.
		c.base = nil
	}
	if err := c.stage(ctx); err != nil {
		return err
	}
	switch {
	case size == 0:
		// Nothing left of what was hashed: start again.
		c.prefix = c.newPrefix()
	case c.prefix != nil && size < c.prefix.Len():
		c.prefix = nil
	}
	if err := c.staged.File().Truncate(size); err != nil {
		return fmt.Errorf("truncate staging file: %w", err)
	}
	c.size = size
	c.dirty = true
	return nil
}

// readAt reads the current bytes, staged or committed.
func (c *content) readAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if off >= c.size {
		return 0, io.EOF
	}
	if int64(len(p)) > c.size-off {
		p = p[:c.size-off]
	}
	if c.staged != nil {
		return c.staged.File().ReadAt(p, off)
	}
	if c.base == nil {
		return 0, io.EOF
	}
	r, err := c.fsys.store.OpenBlob(c.base.path())
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.ReadAt(p, off)
}

func (c *content) setMtime(ns int64) {
	c.mu.Lock()
	c.mtimeNS = ns
	c.mu.Unlock()
}

// snapshot returns the size and mtime to show in attributes.
func (c *content) snapshot() (size, mtimeNS int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size, c.mtimeNS
}

// fsync makes staged bytes durable; they are committed only at close, but a
// writer asking for fsync is owed at least that.
func (c *content) fsync() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staged == nil {
		return nil
	}
	return c.staged.File().Sync()
}

// discard drops staged bytes that will never be committed.
func (c *content) discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staged != nil {
		if err := c.staged.Close(); err != nil {
			c.fsys.log.Warn("remove staging file", "err", err)
		}
		c.staged = nil
		c.prefix = nil
	}
}

// readerWithContext stops a long copy when the caller gives up.
type readerWithContext struct {
	ctx context.Context
	r   io.Reader
}

func (r readerWithContext) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (c *content) isDirty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dirty
}

// state reports what a close must decide on: the size, whether the bytes
// end with the parquet magic, and the first write error.
func (c *content) state() (size int64, endMagic bool, failed error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil || c.size < int64(len(parquetMagic)) {
		return c.size, false, c.failed
	}
	tail := make([]byte, len(parquetMagic))
	var err error
	switch {
	case c.staged != nil:
		_, err = c.staged.File().ReadAt(tail, c.size-int64(len(tail)))
	case c.base != nil:
		// An unchanged committed version ends with its magic.
		return c.size, true, nil
	default:
		return c.size, false, nil
	}
	if err != nil {
		// The commit reads the same bytes and reports why.
		return c.size, true, nil
	}
	return c.size, string(tail) == string(parquetMagic), nil
}
