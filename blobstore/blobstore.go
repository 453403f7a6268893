// Package blobstore keeps the bytes of committed entries and the staging area
// for writes in progress, inside one cache root.
//
// A blob is immutable once published. It is either the parquet file byte for
// byte (raw, name ending in ".parquet") or a standard seekable zstd file of
// independent frames with a seek table (name ending in ".parquet.zst"), so a
// read at any offset decompresses only the frames it spans. Publication is
// durable and atomic: bytes are fsynced under a temporary name, renamed into
// place, and the directory is fsynced, so a blob path that exists holds a
// complete blob. Every path handed in or out is relative to the cache root and
// confined under it.
package blobstore

import (
	"context"
	"io"
	"os"
	"time"
)

// Compression is the --compression policy.
type Compression string

const (
	// Auto compresses when a trial on the first megabytes saves at least 5%.
	Auto Compression = "auto"
	// Zstd always compresses.
	Zstd Compression = "zstd"
	// None never compresses.
	None Compression = "none"
)

// Directory names inside the cache root.
const (
	BlobsDir      = "blobs"
	StagingDir    = "staging"
	QuarantineDir = "quarantine"
)

// Options configure a Store. The zero value is usable: Auto compression,
// 256 KiB frames, fsync on.
type Options struct {
	Compression Compression
	// FrameSize is the uncompressed size of one zstd frame (256 KiB..1 MiB).
	FrameSize int
	// NoSync skips fsync; only for tests and benchmarks that measure without it.
	NoSync bool
}

// Store is the blob and staging area of one cache root. It is safe for
// concurrent use.
type Store struct{}

// Blob describes a published blob.
type Blob struct {
	// Path is relative to the cache root, slash separated.
	Path string
	// StoredSize is the blob file's size on disk.
	StoredSize int64
	// LogicalSize is the size of the parquet it holds.
	LogicalSize int64
	Compressed  bool
}

// Open prepares the store under root, creating its directories as needed.
func Open(root string, opts Options) (*Store, error) { panic("unimplemented") }

// Root is the cache root.
func (s *Store) Root() string { panic("unimplemented") }

// Staged is a file in the staging area. The store holds an advisory lock on it
// for as long as it is open, so a GC in any process skips it.
type Staged struct{}

// CreateStaged creates an empty staging file.
func (s *Store) CreateStaged() (*Staged, error) { panic("unimplemented") }

// File is the staged file, open read-write, for writes at any offset.
func (st *Staged) File() *os.File { panic("unimplemented") }

// Close closes and removes the staged file; after Publish it only releases.
func (st *Staged) Close() error { panic("unimplemented") }

// Publish turns the first size bytes of a staged file into a durable blob.
// A raw blob is the staged file itself, renamed into place; a compressed one
// is written beside it and the staged file is removed. Either way st is
// consumed. The returned blob stays locked against GC until Release.
func (s *Store) Publish(ctx context.Context, st *Staged, size int64) (*Published, error) {
	panic("unimplemented")
}

// Published is a blob that is durable but not yet referenced by the manifest.
type Published struct{ Blob Blob }

// Release drops the GC lock on a published blob once the manifest references it
// (or once the caller gave up and removed it).
func (p *Published) Release() error { panic("unimplemented") }

// Reader reads a blob at any offset; its memory is bounded by a few frames.
type Reader interface {
	io.ReaderAt
	io.Closer
	// Size is the logical (parquet) size.
	Size() int64
	// RawFile is the blob's file when it is stored raw (for FUSE passthrough),
	// nil when compressed.
	RawFile() *os.File
}

// OpenBlob opens a blob for reading.
func (s *Store) OpenBlob(path string) (Reader, error) { panic("unimplemented") }

// Remove deletes a blob. A missing blob is not an error.
func (s *Store) Remove(path string) error { panic("unimplemented") }

// Quarantine moves a blob into quarantine/ instead of deleting it.
func (s *Store) Quarantine(path string) (string, error) { panic("unimplemented") }

// File is one file found by Walk.
type File struct {
	// Path is relative to the cache root.
	Path    string
	Size    int64
	ModTime time.Time
	// Staging is true for files in the staging area, false for blobs.
	Staging bool
}

// Walk calls fn for every regular file under blobs/ and staging/. It never
// follows symbolic links and skips anything that is not a regular file.
func (s *Store) Walk(ctx context.Context, fn func(File) error) error { panic("unimplemented") }

// RemoveUnlocked removes path unless a live process holds its lock (a write or
// a commit in flight). It reports whether the file was removed.
func (s *Store) RemoveUnlocked(path string) (bool, error) { panic("unimplemented") }

// Stat returns the blob file's information, without following symlinks.
func (s *Store) Stat(path string) (os.FileInfo, error) { panic("unimplemented") }
