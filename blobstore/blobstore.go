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
//
// Layout under the root:
//
//	blobs/ab/cd/<32 hex>.parquet[.zst]   published blobs, random names
//	staging/<32 hex>.tmp                 writes in progress
//	staging/<32 hex>.zst.tmp             compressed blobs being written
//	quarantine/                          blobs set aside by integrity checks
//
// Files in staging/ and blobs that are published but not yet referenced by the
// manifest hold an exclusive lock for as long as their owner needs them;
// RemoveUnlocked never deletes a locked file, so a garbage collector in any
// process can sweep both directories without racing a commit in flight.
//
// What confinement and locking each platform gets:
//
//   - Linux (the *_linux.go files): every path is resolved with openat2(2)
//     beneath the root's descriptor with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
//     RESOLVE_NO_MAGICLINKS, so no symlink is ever followed, inside the root
//     or out; the lock is flock(2); renames use RENAME_NOREPLACE; directories
//     are fsynced; sync_file_range starts write-out early.
//   - Elsewhere (the *_other.go files; cross-compiled for Windows and macOS,
//     and tested on Linux with -tags blobstore_osroot): paths are resolved
//     with os.Root, which refuses any path that leaves the root, through ".."
//     or a symlink, but follows a symlink that stays inside it; on Unix its
//     Chmod and Chtimes may act on a symlink swapped in meanwhile. The lock
//     is flock(2) on Unix and LockFileEx on a byte past any file's end on
//     Windows (its locks are mandatory). A rename checks the target is free
//     first (two steps, not one). Directories are fsynced on Unix, not on
//     Windows, which cannot flush a directory handle.
//
// The cache root itself may be a symlink; only what is beneath it is confined.
package blobstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/semaphore"
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

// Frame size limits. DefaultFrameSize matches the 64 KiB reads of parquet
// readers and of the kernel's random reads, so such a read decodes no byte it
// does not return; on parquet pages it costs under 0.5% of the ratio of
// 256 KiB frames, and blobs written with other sizes read the same.
// MaxFrameSize bounds what a Reader will ever decompress at once, also for
// blobs written by other tools.
const (
	DefaultFrameSize = 64 << 10
	MinFrameSize     = 4 << 10
	MaxFrameSize     = 8 << 20
)

const (
	// Auto compresses when a trial on the first trialSize bytes saves at
	// least minSavingsPercent (compressed <= 95% of the sample).
	trialSize         = 4 << 20
	minSavingsPercent = 5
	// readerCachedFrames decoded frames are kept per zstd Reader, enough for
	// the kernel's parallel readahead within neighbouring frames.
	readerCachedFrames = 4
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrInvalidPath: a path is absolute, not clean, climbs out with "..", or
	// is not under a directory the operation accepts.
	ErrInvalidPath = errors.New("invalid blob path")
	// ErrCorrupt: a blob does not decode: bad seek table, frame that fails to
	// decompress, or a frame checksum mismatch.
	ErrCorrupt = errors.New("corrupt blob")
	// ErrConsumed: a staged file was already published or closed.
	ErrConsumed = errors.New("staged file already published or closed")
)

// Options configure a Store. The zero value is usable: Auto compression,
// 64 KiB frames, fsync on.
type Options struct {
	Compression Compression
	// FrameSize is the uncompressed size of one zstd frame: 0 means
	// DefaultFrameSize; MinFrameSize..MaxFrameSize are accepted, 64 KiB..1 MiB
	// is the useful range (bigger frames make random reads slower, smaller
	// ones cost ratio and seek table memory).
	FrameSize int
	// NoSync skips fsync; only for tests and benchmarks that measure without it.
	NoSync bool
	// DeferCompression makes Auto publish every file raw, at the speed of a
	// rename, and only mark the ones its trial found compressible
	// (Blob.Compressible) for Compress to rewrite once nobody reads them.
	DeferCompression bool
}

// Store is the blob and staging area of one cache root. It is safe for
// concurrent use.
type Store struct {
	root    string
	rootDir // the open root every path is resolved beneath
	opts    Options

	enc *zstd.Encoder // EncodeAll is safe for concurrent use
	dec *zstd.Decoder // DecodeAll is safe for concurrent use
	// decoders is how many frames dec decodes at once (one per core).
	decoders int

	// durableDirs holds shard directories whose own entries (and their
	// parents') this process has fsynced, so a publish into a shard that
	// another writer has just created still makes the shard durable.
	durableDirs sync.Map

	// srcBufs recycles buffers for compressed frames read by Readers,
	// frameBufs those for decoded frames.
	srcBufs   sync.Pool
	frameBufs framePool
	// readAhead is the decoded-frame memory all Readers may hold ahead of
	// their sequential reads together.
	readAhead *semaphore.Weighted
}

// Blob describes a published blob.
type Blob struct {
	// Path is relative to the cache root, slash separated.
	Path string
	// StoredSize is the blob file's size on disk.
	StoredSize int64
	// LogicalSize is the size of the parquet it holds.
	LogicalSize int64
	Compressed  bool
	// Compressible marks a raw blob that Auto's trial found worth
	// compressing when DeferCompression kept it raw (see Store.Compress).
	Compressible bool
}

// Open prepares the store under root, creating its directories as needed.
func Open(root string, opts Options) (*Store, error) {
	switch opts.Compression {
	case "":
		opts.Compression = Auto
	case Auto, Zstd, None:
	default:
		return nil, fmt.Errorf("blobstore: unknown compression %q (want auto, zstd or none)", opts.Compression)
	}
	if opts.FrameSize == 0 {
		opts.FrameSize = DefaultFrameSize
	}
	if opts.FrameSize < MinFrameSize || opts.FrameSize > MaxFrameSize {
		return nil, fmt.Errorf("blobstore: frame size %d outside %d..%d", opts.FrameSize, MinFrameSize, MaxFrameSize)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blobstore: cache root %s: %w", root, err)
	}
	// A root that exists keeps the mode its owner gave it; one made here
	// is private like everything beneath it.
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return nil, fmt.Errorf("blobstore: create cache root: %w", err)
	}
	// The root itself may be a symlink the user chose (say to a bigger disk);
	// what is beneath it is resolved as openRootDir's platform allows.
	dir, err := openRootDir(abs)
	if err != nil {
		return nil, err
	}
	s := &Store{root: abs, rootDir: dir, opts: opts, readAhead: semaphore.NewWeighted(readAheadBudget)}
	if err := s.makeDirs(); err != nil {
		dir.close()
		return nil, err
	}
	n := runtime.GOMAXPROCS(0)
	s.decoders = n
	// A commit waits on the encoder, so speed wins: on parquet-like plain
	// pages SpeedFastest measured 4.9x at ~410 MB/s on two cores, the default
	// level 5.0x at ~300 MB/s.
	// Every frame is compressed on its own, so a window beyond the frame
	// size buys nothing, and the default 8 MiB one makes each of the
	// encoder's n states keep 16 MiB of history.
	window := zstd.MinWindowSize
	for window < opts.FrameSize {
		window <<= 1
	}
	s.enc, err = zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(n),
		zstd.WithWindowSize(window),
		zstd.WithEncoderCRC(true),
	)
	if err != nil {
		dir.close()
		return nil, fmt.Errorf("blobstore: zstd encoder: %w", err)
	}
	s.dec, err = zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(n),
		zstd.WithDecoderMaxMemory(MaxFrameSize),
	)
	if err != nil {
		s.enc.Close()
		dir.close()
		return nil, fmt.Errorf("blobstore: zstd decoder: %w", err)
	}
	return s, nil
}

// Close releases the store's descriptors and codecs. Readers, staged files
// and published blobs must be closed or released first.
func (s *Store) Close() error {
	s.enc.Close()
	s.dec.Close()
	if err := s.rootDir.close(); err != nil {
		return &os.PathError{Op: "close", Path: s.root, Err: err}
	}
	return nil
}

// Root is the cache root.
func (s *Store) Root() string { return s.root }

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

// File is one file found by Walk.
type File struct {
	// Path is relative to the cache root.
	Path    string
	Size    int64
	ModTime time.Time
	// Staging is true for files in the staging area, false for blobs.
	Staging bool
}
