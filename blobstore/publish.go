package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sync"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
)

// Staged is a file in the staging area. The store holds an advisory lock on it
// for as long as it is open, so a GC in any process skips it.
type Staged struct {
	s   *Store
	rel string

	mu sync.Mutex
	f  *os.File // nil once published or closed
	// writtenOut is where the last write-out started by Wrote ended;
	// noWriteout is set once the file looks bound for compression.
	writtenOut int64
	noWriteout bool
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

// writeoutChunk is how far a writer runs ahead of the last write-out before
// Wrote starts the next one.
const writeoutChunk = 8 << 20

// Wrote tells the store that bytes [off, off+n) of the staged file were just
// written. Once a writer is writeoutChunk past the last write-out, the bytes
// behind it are sent to disk without waiting for them: a raw publish must
// fsync them anyway, and a long copy then overlaps with the disk instead of
// paying for it all at close. A file the store will compress is left alone
// (its staged bytes never need to reach the disk): in Auto mode, the trial
// is run early on the head as a hint; Publish decides afresh.
func (st *Staged) Wrote(ctx context.Context, off, n int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	end := off + n
	if st.f == nil || st.noWriteout || end-st.writtenOut < writeoutChunk {
		return
	}
	switch st.s.opts.Compression {
	case Zstd:
		st.noWriteout = true
		return
	case Auto:
		// Deferred compression publishes everything raw: write it out.
		if st.writtenOut == 0 && !st.s.opts.DeferCompression {
			res, err := st.s.trial(ctx, st.f, end)
			if err != nil || res.compress {
				st.noWriteout = true
				return
			}
		}
	}
	startWriteout(st.f, st.writtenOut, end-st.writtenOut)
	st.writtenOut = end
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
	// Unlink while still holding the lock, so no GC sees the name unlocked
	// (os.Root opens files shareable for deletion on Windows too).
	err := st.s.unlink(st.rel)
	if errors.Is(err, fs.ErrNotExist) {
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
// On error no blob is left under blobs/ (at most an empty shard directory,
// made while the data was being synced) and st stays staged (open, locked,
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

	compress, compressible := false, false
	var kept [][]byte
	switch s.opts.Compression {
	case Zstd:
		compress = true
	case Auto:
		t, err := s.trial(ctx, st.f, size)
		if err != nil {
			return nil, fmt.Errorf("blobstore: publish %s: %w", s.abs(st.rel), err)
		}
		compress, kept = t.compress, t.kept
		if s.opts.DeferCompression {
			compress, compressible, kept = false, t.compress, nil
		}
	}
	var p *Published
	if compress {
		p, err = s.publishZstd(ctx, st, size, kept)
	} else {
		p, err = s.publishRaw(st, size, fi.Size())
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore: publish %s: %w", s.abs(st.rel), err)
	}
	p.Blob.Compressible = compressible
	return p, nil
}

// Compress writes the raw blob at path again as a new, durable seekable
// zstd blob, locked against GC until Release, and leaves path as it is: the
// caller points the manifest at the new blob and retires the old one.
func (s *Store) Compress(ctx context.Context, path string) (*Published, error) {
	rd, err := s.OpenBlob(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	if rd.RawFile() == nil {
		return nil, fmt.Errorf("blobstore: compress %s: already compressed", s.abs(path))
	}
	p, err := s.writeZstd(ctx, rd, rd.Size(), nil)
	if err != nil {
		return nil, fmt.Errorf("blobstore: compress %s: %w", s.abs(path), err)
	}
	return p, nil
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

// encodeKept writes the first size bytes of src to dst as a seekable zstd
// stream like encode does, frame by frame, taking each frame the trial kept
// instead of compressing it again, and returns the bytes written.
func (s *Store) encodeKept(ctx context.Context, dst io.Writer, src io.ReaderAt, size int64, kept [][]byte) (int64, error) {
	r := &replay{enc: s.enc}
	enc, err := seekable.NewEncoder(r)
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: dst}
	// The frames are in hand, but the seek table's checksums are of the
	// uncompressed bytes: read them again (from the page cache, likely).
	buf := make([]byte, min(size, int64(s.opts.FrameSize)))
	for i, off := 0, int64(0); off < size; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		chunk := buf[:min(int64(len(buf)), size-off)]
		if err := readFull(src, chunk, off); err != nil {
			return 0, fmt.Errorf("read staged file: %w", err)
		}
		r.frame = kept[i]
		frame, err := enc.Encode(chunk)
		if err != nil {
			return 0, err
		}
		if _, err := cw.Write(frame); err != nil {
			return 0, err
		}
		off += int64(len(chunk))
	}
	table, err := enc.EndStream()
	if err != nil {
		return 0, err
	}
	if _, err := cw.Write(table); err != nil {
		return 0, err
	}
	return cw.n, nil
}

// replay hands the seekable encoder a frame compressed earlier, or, when
// there is none, compresses the bytes it is given.
type replay struct {
	enc   seekable.ZSTDEncoder
	frame []byte
}

func (r *replay) EncodeAll(src, dst []byte) []byte {
	if r.frame == nil {
		return r.enc.EncodeAll(src, dst)
	}
	return append(dst, r.frame...)
}

// trialResult is the verdict of a trial compression.
type trialResult struct {
	compress bool
	// kept holds, when the trial covered the whole file and it is to be
	// compressed, each frame's compressed bytes, or nil for a frame that
	// did not shrink enough to be worth keeping (it is compressed again).
	kept [][]byte
}

// trial compresses a sample from the head of f, frame by frame as a blob
// would be, and reports whether it saved at least minSavingsPercent. Only
// the sample is read.
//
// Frames are compressed one after the other through two buffers from the
// store's pools: commits run side by side and share the CPU anyway, while
// buffers per frame (or per trial) would make each commit of a small file
// allocate several times its size.
func (s *Store) trial(ctx context.Context, f io.ReaderAt, size int64) (trialResult, error) {
	n := min(size, trialSize)
	if n == 0 {
		return trialResult{}, nil
	}
	frameSize := int64(s.opts.FrameSize)
	whole := n == size
	var kept [][]byte
	if whole {
		kept = make([][]byte, (n+frameSize-1)/frameSize)
	}
	// Full frame-sized buffers, whatever the sample's size: the pool
	// serves the readers' frames too, and a smaller buffer put back there
	// would be dropped by the next reader that draws it.
	src := s.frameBufs.get(uint32(frameSize))
	defer s.frameBufs.put(src)
	// Room for a frame that does not shrink: headers, block headers and
	// the checksum around the stored bytes.
	dstp := s.getSrcBuf(len(src) + len(src)>>10 + 64)
	defer s.srcBufs.Put(dstp)
	dst := (*dstp)[:0]
	compressed := int64(0)
	for i, off := 0, int64(0); off < n; i++ {
		if err := ctx.Err(); err != nil {
			return trialResult{}, err
		}
		chunk := src[:min(frameSize, n-off)]
		if err := readFull(f, chunk, off); err != nil {
			return trialResult{}, fmt.Errorf("read trial sample: %w", err)
		}
		dst = s.enc.EncodeAll(chunk, dst[:0])
		// seekEntrySize: the frame's seek table entry.
		compressed += int64(len(dst)) + seekEntrySize
		if whole && saves(int64(len(dst)), int64(len(chunk))) {
			kept[i] = bytes.Clone(dst)
		}
		off += int64(len(chunk))
	}
	if !saves(compressed, n) {
		return trialResult{}, nil
	}
	return trialResult{compress: true, kept: kept}, nil
}

// seekEntrySize is the size of a frame's entry in the seek table.
const seekEntrySize = 12

// saves reports whether compressing to compressed bytes saves at least
// minSavingsPercent of plain.
func saves(compressed, plain int64) bool {
	return compressed*100 <= plain*(100-minSavingsPercent)
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
