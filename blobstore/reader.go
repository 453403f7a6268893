package blobstore

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
	"github.com/cespare/xxhash/v2"
)

// rawReader serves a raw blob straight from its file; pread is safe for
// concurrent use.
type rawReader struct {
	f    *os.File
	size int64
}

func (r *rawReader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, off) }
func (r *rawReader) Close() error                            { return r.f.Close() }
func (r *rawReader) Size() int64                             { return r.size }
func (r *rawReader) RawFile() *os.File                       { return r.f }

// zstdReader serves a seekable zstd blob. A random read decodes only the
// frames it spans; a sequential reader also has the next readAheadBytes
// decoded in the background (see readahead.go). It keeps at most
// readerCachedFrames decoded frames plus the read-ahead window, so its memory
// is that plus one frame per concurrent ReadAt and the parsed seek table (32
// bytes a frame, 512 KiB per GiB at 64 KiB frames).
//
// The library's own Reader is not used: its Close clears the frame cache
// without waiting for ReadAt (a data race), and its one-frame cache makes
// concurrent readers of neighbouring frames thrash and decode the same frame
// twice. The seek table parsing and the on-disk format are the library's.
type zstdReader struct {
	s     *Store
	f     *os.File
	table seekable.SeekTable
	size  int64

	// mu makes Close wait for ReadAts in flight.
	mu     sync.RWMutex
	closed bool

	cache frameCache
	seq   seqTracker
	ahead int // frames decoded ahead of a sequential reader

	// stop is closed by Close; read-ahead goroutines, counted in bg, stop
	// decoding and Close waits for them before closing the file.
	stop chan struct{}
	bg   sync.WaitGroup

	// decoded counts frames decompressed, for tests.
	decoded atomic.Int64
}

// Seek table footer: Number_Of_Frames (4), Seek_Table_Descriptor (1),
// Seekable_Magic_Number (4); the table is a skippable frame (8-byte header).
const (
	seekFooterSize  = 9
	seekableMagic   = 0x8F92EAB1
	skippableHeader = 8
)

// maxCompressedFrame bounds a frame's compressed size: zstd never expands
// data by more than a small fraction, so anything bigger is corruption.
const maxCompressedFrame = MaxFrameSize + MaxFrameSize/8 + 1<<16

func (s *Store) newZstdReader(f *os.File, fileSize int64) (*zstdReader, error) {
	if fileSize < skippableHeader+seekFooterSize {
		return nil, fmt.Errorf("%w: %d bytes is too short for a seek table", ErrCorrupt, fileSize)
	}
	var footer [seekFooterSize]byte
	if err := readFull(f, footer[:], fileSize-seekFooterSize); err != nil {
		return nil, fmt.Errorf("read seek table footer: %w", err)
	}
	if binary.LittleEndian.Uint32(footer[5:]) != seekableMagic {
		return nil, fmt.Errorf("%w: no seek table", ErrCorrupt)
	}
	entrySize := int64(8)
	if footer[4]&0x80 != 0 {
		entrySize = 12
	}
	tableSize := skippableHeader + int64(binary.LittleEndian.Uint32(footer[:4]))*entrySize + seekFooterSize
	if tableSize > fileSize {
		return nil, fmt.Errorf("%w: seek table of %d bytes in a %d-byte file", ErrCorrupt, tableSize, fileSize)
	}
	buf := make([]byte, tableSize)
	if err := readFull(f, buf, fileSize-tableSize); err != nil {
		return nil, fmt.Errorf("read seek table: %w", err)
	}
	table, err := seekable.NewSeekTable(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	// The frames must tile the file up to the seek table exactly, and each
	// must fit the memory bound; otherwise the file is truncated or foreign.
	var compressed int64
	for id := range table.NumFrames() {
		e, _ := table.EntryByID(id)
		if e.DecompressedSize > MaxFrameSize || e.CompressedSize > maxCompressedFrame {
			return nil, fmt.Errorf("%w: frame %d of %d bytes (%d compressed) exceeds %d",
				ErrCorrupt, id, e.DecompressedSize, e.CompressedSize, MaxFrameSize)
		}
		compressed += int64(e.CompressedSize)
	}
	if compressed != fileSize-tableSize {
		return nil, fmt.Errorf("%w: frames cover %d bytes, file holds %d before its seek table",
			ErrCorrupt, compressed, fileSize-tableSize)
	}
	r := &zstdReader{s: s, f: f, table: *table, size: int64(table.Size()), stop: make(chan struct{})}
	r.ahead = aheadFrames(table)
	r.cache.init(readerCachedFrames, r.ahead, s.readAhead, &s.frameBufs)
	r.seq.init()
	return r, nil
}

func (r *zstdReader) Size() int64       { return r.size }
func (r *zstdReader) RawFile() *os.File { return nil }

// Close waits for reads and read-ahead in flight, then closes the file.
// Later reads fail with os.ErrClosed.
func (r *zstdReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	close(r.stop)
	r.bg.Wait()
	r.cache.clear()
	return r.f.Close()
}

// ReadAt follows os.File: it fills p or returns io.EOF with the bytes up to
// the end, and is safe for concurrent use.
func (r *zstdReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return 0, &os.PathError{Op: "read", Path: r.f.Name(), Err: os.ErrClosed}
	}
	if off < 0 {
		return 0, &os.PathError{Op: "readat", Path: r.f.Name(), Err: fmt.Errorf("negative offset %d", off)}
	}
	end := min(off+int64(len(p)), r.size)
	if off < end && r.seq.observe(off, end) && r.ahead > 0 {
		first, ok1 := r.table.EntryByDecompressedOffset(uint64(off))
		last, ok2 := r.table.EntryByDecompressedOffset(uint64(end - 1))
		if ok1 && ok2 {
			r.readAhead(first.ID, last.ID)
		}
	}
	n := 0
	for n < len(p) && off+int64(n) < r.size {
		pos := off + int64(n)
		e, ok := r.table.EntryByDecompressedOffset(uint64(pos))
		if !ok {
			return n, fmt.Errorf("blobstore: read %s: %w: no frame holds offset %d", r.f.Name(), ErrCorrupt, pos)
		}
		within := int(pos - int64(e.DecompressedOffset))
		// A read that covers a whole frame nobody else has decodes
		// straight into p.
		if within == 0 && len(p)-n >= int(e.DecompressedSize) {
			fr, err := r.cache.peek(int64(e.ID))
			if err != nil {
				return n, err
			}
			if fr != nil {
				n += copy(p[n:], fr.data)
				r.cache.release(fr)
				continue
			}
			// The rest of p is slack the decoder may scribble on before
			// the next frame overwrites it, never memory beyond p.
			if err := r.decodeInto(p[n:n+int(e.DecompressedSize):len(p)], e); err != nil {
				return n, err
			}
			n += int(e.DecompressedSize)
			continue
		}
		fr, err := r.cache.get(e.ID, func() ([]byte, error) {
			buf := r.s.frameBufs.get(e.DecompressedSize)
			return buf, r.decodeInto(buf, e)
		})
		if err != nil {
			return n, err
		}
		n += copy(p[n:], fr.data[within:])
		r.cache.release(fr)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// decodeInto reads, decompresses and verifies frame e into dst, which is
// exactly e.DecompressedSize long.
func (r *zstdReader) decodeInto(dst []byte, e seekable.FrameOffsetEntry) error {
	srcp := r.s.getSrcBuf(int(e.CompressedSize))
	defer r.s.srcBufs.Put(srcp)
	src := (*srcp)[:e.CompressedSize]
	if err := readFull(r.f, src, int64(e.CompressedOffset)); err != nil {
		return fmt.Errorf("blobstore: read %s frame %d: %w", r.f.Name(), e.ID, err)
	}
	return r.decode(dst, src, e)
}

// decodeSlack is the spare capacity past a frame's end that lets the zstd
// decoder copy in whole 32-byte blocks instead of its slower bounds-exact
// copies (klauspost/compress's compressedBlockOverAlloc).
const decodeSlack = 32

// decode decompresses and verifies frame e from its compressed bytes src
// into dst, which is exactly e.DecompressedSize long; capacity past that is
// scratch space.
func (r *zstdReader) decode(dst, src []byte, e seekable.FrameOffsetEntry) error {
	r.decoded.Add(1)
	out, err := r.s.dec.DecodeAll(src, dst[:0])
	if err != nil {
		return fmt.Errorf("blobstore: read %s frame %d: %w: %w", r.f.Name(), e.ID, ErrCorrupt, err)
	}
	// A frame that decodes to another size than the seek table says, or into
	// a reallocated buffer, is corrupt.
	if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
		return fmt.Errorf("blobstore: read %s frame %d: %w: decoded %d bytes, seek table says %d",
			r.f.Name(), e.ID, ErrCorrupt, len(out), len(dst))
	}
	if r.table.HasChecksums() && frameChecksum(src, dst) != e.Checksum {
		return fmt.Errorf("blobstore: read %s frame %d: %w: checksum mismatch", r.f.Name(), e.ID, ErrCorrupt)
	}
	return nil
}

// frameChecksum is the low 32 bits of the XXH64 of dst, the decoded content
// of the zstd frame src, as the seek table records it. A frame that carries
// its own content checksum holds exactly that value in its last four bytes,
// and the decoder has just verified it against dst, so it is read rather
// than hashed again (a second pass over every decoded byte).
func frameChecksum(src, dst []byte) uint32 {
	const zstdMagic, hasChecksum = 0xFD2FB528, 0x04
	if len(src) >= 9 && binary.LittleEndian.Uint32(src) == zstdMagic && src[4]&hasChecksum != 0 {
		return binary.LittleEndian.Uint32(src[len(src)-4:])
	}
	return uint32(xxhash.Sum64(dst))
}

func (s *Store) getSrcBuf(n int) *[]byte {
	if p, ok := s.srcBufs.Get().(*[]byte); ok && cap(*p) >= n {
		return p
	}
	b := make([]byte, max(n, s.opts.FrameSize+s.opts.FrameSize/8))
	return &b
}
