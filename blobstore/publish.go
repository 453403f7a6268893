package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sync"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Staged is a file in the staging area. The store holds an advisory lock on it
// for as long as it is open, so a GC in any process skips it.
type Staged struct {
	s   *Store
	rel string

	mu sync.Mutex
	f  *os.File // nil once published or closed
}

// CreateStaged creates an empty staging file.
func (s *Store) CreateStaged() (*Staged, error) {
	f, name, err := s.createLocked(".tmp")
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	return &Staged{s: s, rel: StagingDir + "/" + name + ".tmp", f: f}, nil
}

// File is the staged file, open read-write, for writes at any offset.
// It is nil after Publish or Close, and waits for a Publish in progress.
func (st *Staged) File() *os.File {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.f
}

// Path is the staged file's path relative to the cache root.
func (st *Staged) Path() string { return st.rel }

// Close closes and removes the staged file; after Publish it only releases.
// It is safe to call more than once.
func (st *Staged) Close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.f == nil {
		return nil
	}
	f := st.f
	st.f = nil
	// Unlink while still holding the lock, so no GC sees the name unlocked.
	err := st.s.unlink(st.rel)
	if errors.Is(err, unix.ENOENT) {
		err = nil
	}
	return errors.Join(err, f.Close())
}

// Published is a blob that is durable but not yet referenced by the manifest.
type Published struct {
	Blob Blob

	mu sync.Mutex
	f  *os.File // holds the GC lock
}

// Release drops the GC lock on a published blob once the manifest references it
// (or once the caller gave up and removed it). It is safe to call more than once.
func (p *Published) Release() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}

// Publish turns the first size bytes of a staged file into a durable blob.
// A raw blob is the staged file itself, renamed into place; a compressed one
// is written beside it and the staged file is removed. Either way st is
// consumed. The returned blob stays locked against GC until Release.
//
// On error nothing is left under blobs/ and st stays staged (open, locked,
// possibly truncated to size): the caller still closes it. Errors wrap the
// failing syscall's errno, so errors.Is(err, syscall.ENOSPC) reports a full
// disk.
func (s *Store) Publish(ctx context.Context, st *Staged, size int64) (*Published, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.f == nil {
		return nil, fmt.Errorf("blobstore: publish %s: %w", s.abs(st.rel), ErrConsumed)
	}
	if st.s != s {
		return nil, fmt.Errorf("blobstore: publish %s: staged by another store", s.abs(st.rel))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blobstore: publish %s: %w", s.abs(st.rel), err)
	}
	fi, err := st.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("blobstore: publish: %w", err)
	}
	if size < 0 || size > fi.Size() {
		return nil, fmt.Errorf("blobstore: publish %s: size %d, staged file holds %d bytes", s.abs(st.rel), size, fi.Size())
	}

	compress := false
	switch s.opts.Compression {
	case Zstd:
		compress = true
	case Auto:
		compress, err = s.worthCompressing(ctx, st.f, size)
		if err != nil {
			return nil, fmt.Errorf("blobstore: publish %s: %w", s.abs(st.rel), err)
		}
	}
	var p *Published
	if compress {
		p, err = s.publishZstd(ctx, st, size)
	} else {
		p, err = s.publishRaw(st, size, fi.Size())
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore: publish %s: %w", s.abs(st.rel), err)
	}
	return p, nil
}

// publishRaw renames the staged file into blobs/. st.mu is held.
func (s *Store) publishRaw(st *Staged, size, staged int64) (*Published, error) {
	if staged != size {
		if err := st.f.Truncate(size); err != nil {
			return nil, err
		}
	}
	name, err := newName()
	if err != nil {
		return nil, err
	}
	shard, rel := blobPath(name, false)
	sfd, base, err := s.openParent(st.rel)
	if err != nil {
		return nil, err
	}
	defer unix.Close(sfd)
	// GC's orphan grace counts from publication, not from when the writer
	// created the file, which may be long ago.
	if err := unix.UtimesNanoAt(sfd, base, nowTimes(), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &os.PathError{Op: "utimes", Path: st.f.Name(), Err: err}
	}
	// Data, size and mtime must be on disk before the name that promises a
	// complete blob can be.
	if err := s.fsync(int(st.f.Fd()), st.rel); err != nil {
		return nil, err
	}
	dfd, err := s.openShard(shard)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	blobBase := name + ".parquet"
	if err := renameNoReplace(sfd, base, dfd, blobBase); err != nil {
		return nil, &os.LinkError{Op: "rename", Old: st.f.Name(), New: s.abs(rel), Err: err}
	}
	// Persist the rename; the staging directory needs no fsync: both entries
	// change in one journal transaction, which this fsync commits.
	if err := s.fsync(dfd, shard); err != nil {
		// Put the staged file back so nothing is left under blobs/.
		if rerr := unix.Renameat(dfd, blobBase, sfd, base); rerr != nil {
			_ = unix.Unlinkat(dfd, blobBase, 0)
		}
		return nil, err
	}
	p := &Published{
		Blob: Blob{Path: rel, StoredSize: size, LogicalSize: size},
		f:    st.f,
	}
	st.f = nil
	return p, nil
}

// nowTimes sets atime and mtime to the kernel's current time.
func nowTimes() []unix.Timespec {
	return []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
}

// publishZstd writes the staged bytes as a seekable zstd blob. st.mu is held.
func (s *Store) publishZstd(ctx context.Context, st *Staged, size int64) (p *Published, err error) {
	tmp, name, err := s.createLocked(".zst.tmp")
	if err != nil {
		return nil, err
	}
	tmpBase := name + ".zst.tmp"
	tmpRel := StagingDir + "/" + tmpBase
	renamed := false
	sfd, err := s.openDir(StagingDir)
	if err != nil {
		_ = s.unlink(tmpRel)
		tmp.Close()
		return nil, err
	}
	defer unix.Close(sfd)
	defer func() {
		if err != nil && !renamed {
			// Unlink before close: the lock keeps a GC off the name until
			// it is gone.
			_ = unix.Unlinkat(sfd, tmpBase, 0)
			tmp.Close()
		}
	}()

	stored, err := s.encode(ctx, tmp, st.f, size)
	if err != nil {
		return nil, err
	}
	// The compressed bytes must be on disk before the name is.
	if err := s.fsync(int(tmp.Fd()), tmpRel); err != nil {
		return nil, err
	}
	shard, rel := blobPath(name, true)
	dfd, err := s.openShard(shard)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	blobBase := name + ".parquet.zst"
	if err := renameNoReplace(sfd, tmpBase, dfd, blobBase); err != nil {
		return nil, &os.LinkError{Op: "rename", Old: tmp.Name(), New: s.abs(rel), Err: err}
	}
	// Persist the rename before anyone may reference the blob.
	if err := s.fsync(dfd, shard); err != nil {
		if rerr := unix.Renameat(dfd, blobBase, sfd, tmpBase); rerr != nil {
			_ = unix.Unlinkat(dfd, blobBase, 0)
		}
		return nil, err
	}
	renamed = true

	// The staged bytes are no longer needed. Errors are ignored and there is
	// no fsync: the blob is durable, and a staging file left behind (or
	// brought back by a crash) is an unlocked orphan that GC removes.
	_ = unix.Unlinkat(sfd, path.Base(st.rel), 0)
	_ = st.f.Close()
	st.f = nil
	return &Published{
		Blob: Blob{Path: rel, StoredSize: stored, LogicalSize: size, Compressed: true},
		f:    tmp,
	}, nil
}

// encode writes the first size bytes of src to dst as a seekable zstd stream,
// frames compressed in parallel, and returns the bytes written.
func (s *Store) encode(ctx context.Context, dst *os.File, src io.ReaderAt, size int64) (int64, error) {
	cw := &countingWriter{w: dst}
	w, err := seekable.NewWriter(cw, s.enc)
	if err != nil {
		return 0, err
	}
	var off int64
	next := func() ([]byte, error) {
		n := min(int64(s.opts.FrameSize), size-off)
		if n <= 0 {
			return nil, nil
		}
		// A fresh buffer per frame: WriteMany may hold each until it returns.
		buf := make([]byte, n)
		if err := readFull(src, buf, off); err != nil {
			return nil, fmt.Errorf("read staged file: %w", err)
		}
		off += n
		return buf, nil
	}
	if err := w.WriteMany(ctx, next, seekable.WithConcurrency(runtime.GOMAXPROCS(0))); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// worthCompressing compresses a trial sample from the head of f and reports
// whether it saved at least minSavingsPercent. Only the sample is read.
func (s *Store) worthCompressing(ctx context.Context, f io.ReaderAt, size int64) (bool, error) {
	n := min(size, trialSize)
	if n == 0 {
		return false, nil
	}
	sample := make([]byte, n)
	if err := readFull(f, sample, 0); err != nil {
		return false, fmt.Errorf("read trial sample: %w", err)
	}
	frames := (len(sample) + s.opts.FrameSize - 1) / s.opts.FrameSize
	sizes := make([]int, frames)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range frames {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			chunk := sample[i*s.opts.FrameSize : min((i+1)*s.opts.FrameSize, len(sample))]
			// 12 bytes: the frame's seek table entry.
			sizes[i] = len(s.enc.EncodeAll(chunk, nil)) + 12
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return false, err
	}
	compressed := 0
	for _, c := range sizes {
		compressed += c
	}
	return int64(compressed)*100 <= n*(100-minSavingsPercent), nil
}

// readFull fills buf from r at off; a short read is an error.
func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%d bytes at offset %d: %w", len(buf), off, err)
}
