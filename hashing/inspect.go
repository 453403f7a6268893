package hashing

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/sync/semaphore"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

const (
	magic = "PAR1"
	// magicEncrypted starts and ends files whose footer is encrypted; reading
	// them needs keys the cache does not have.
	magicEncrypted = "PARE"
	// tailLen is the footer length (uint32, little endian) and the magic
	// that end every parquet file.
	tailLen = 4 + 4
	// minSize holds both magics and the footer length, with an empty footer.
	minSize = 4 + tailLen
)

// MaxFooterSize is the largest footer Inspect accepts, in bytes. The footer
// is the one part of a file Inspect holds in memory whole, so its declared
// length must not decide how much the daemon allocates: longer footers are
// refused (ErrBadFooter) before anything is allocated for them. Real footers
// are far smaller: a few KiB for a typical feature file, about 2 MiB for a
// 10 GiB DuckDB file of a few columns (one chunk description of ~150 bytes per
// column and row group).
const MaxFooterSize = 16 << 20

// DefaultBudget is the memory a Validator made by NewValidator(0) lets its
// concurrent validations hold at once: two of the largest footers with their
// page-header buffers.
const DefaultBudget = 2 * (MaxFooterSize + tailLen + maxPageHeaderSize)

// A Validator runs Inspect for many callers at once within one memory budget:
// each validation reserves its footer and page-header buffers before it
// allocates them and waits while the budget is spent, so the memory held by
// validations does not grow with the number of writers closing at once.
type Validator struct {
	budget *semaphore.Weighted
	size   int64
}

// NewValidator returns a Validator whose validations together hold at most
// budget bytes of buffers (DefaultBudget if budget is 0). The budget is
// raised to what the largest validation needs, so that every file can pass.
func NewValidator(budget int64) *Validator {
	if budget == 0 {
		budget = DefaultBudget
	}
	budget = max(budget, MaxFooterSize+tailLen+maxPageHeaderSize)
	return &Validator{budget: semaphore.NewWeighted(budget), size: budget}
}

// Inspect validates that r (size bytes long) is a well-formed parquet file and
// describes it, as the package-level Inspect does, within v's budget. It
// returns ctx's error if ctx ends while it waits for the budget or walks pages.
func (v *Validator) Inspect(ctx context.Context, r io.ReaderAt, size int64) (Info, error) {
	return inspect(ctx, v.budget, r, size)
}

// Inspect validates that r (size bytes long) is a well-formed parquet file and
// describes it. It reads the head magic, the tail, the footer and the page
// headers of every column chunk, no page body. Callers that validate
// concurrently should share a Validator instead, so that their buffers
// together stay within one budget.
func Inspect(r io.ReaderAt, size int64) (Info, error) {
	return inspect(context.Background(), nil, r, size)
}

// inspect reserves from budget (nil for none) each buffer before allocating
// it and gives everything back before it returns: the footer and what it
// decodes into are garbage by then.
func inspect(ctx context.Context, budget *semaphore.Weighted, r io.ReaderAt, size int64) (Info, error) {
	footer, release, err := readFooter(ctx, budget, r, size)
	if err != nil {
		return Info{}, err
	}
	defer release()
	// The footer is decoded and its shape checked here before parquet-go
	// decodes it again: parquet-go sizes buffers from the schema before it
	// checks it (see checkShape). Footers are small; the second decode
	// costs microseconds.
	md, err := decodeFooter(footer.bytes())
	if err != nil {
		return Info{}, err
	}
	tree, err := checkShape(md)
	if err != nil {
		return Info{}, err
	}
	if err := openFile(footer, size); err != nil {
		return Info{}, err
	}
	// Every reader follows the chunk offsets to the pages; a footer that
	// parses over pages that do not (two files concatenated, a parquet
	// appended to another) would commit a file no reader can scan.
	if err := checkLayout(ctx, r, md, size-tailLen-int64(len(footer.bytes()))); err != nil {
		return Info{}, err
	}
	info := describe(md, tree)
	info.FooterLength = int64(len(footer.bytes()))
	return info, nil
}

// footerTail is the end of a parquet file held in memory: the footer, its
// length and the trailing magic, which are the file's last len(tail) bytes.
type footerTail struct {
	r    io.ReaderAt
	tail []byte
	off  int64 // where tail starts in the file
}

func (t *footerTail) bytes() []byte { return t.tail[:len(t.tail)-tailLen] }

// ReadAt serves the head magic and the tail from memory, so that handing t to
// parquet.OpenFile reads no byte of the file a second time. Any other range
// goes to the file; OpenFile with page indexes and bloom filters skipped
// asks for none, which the tests check by counting.
func (t *footerTail) ReadAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	switch {
	case off >= 0 && n <= int64(len(magic))-off:
		// readFooter has checked the head magic before t exists.
		return copy(p, magic[off:]), nil
	case off >= t.off && n <= t.off+int64(len(t.tail))-off:
		return copy(p, t.tail[off-t.off:]), nil
	}
	return t.r.ReadAt(p, off)
}

// readFooter checks both magics and the footer length, then reads the footer.
// The footer buffer is allocated only once its length is known to fit in the
// file and under MaxFooterSize, and once budget (if not nil) has granted it
// and the page-header buffers checkLayout will need; release gives that back.
func readFooter(ctx context.Context, budget *semaphore.Weighted, r io.ReaderAt, size int64) (_ *footerTail, release func(), err error) {
	t, err := checkTail(r, size)
	if err != nil {
		return nil, nil, err
	}
	release = func() {}
	if budget != nil {
		n := t.length + tailLen + maxPageHeaderSize
		if err := budget.Acquire(ctx, n); err != nil {
			return nil, nil, fmt.Errorf("wait for validation memory: %w", err)
		}
		release = func() { budget.Release(n) }
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	tail := make([]byte, t.length+tailLen)
	off := size - int64(len(tail))
	if err := readAt(r, tail[:t.length], off); err != nil {
		return nil, nil, fmt.Errorf("read footer: %w", err)
	}
	copy(tail[t.length:], t.end[:])
	return &footerTail{r: r, tail: tail, off: off}, release, nil
}

// tailInfo is what the last bytes of a file say before the footer is read.
type tailInfo struct {
	end    [tailLen]byte
	length int64
}

// checkTail checks both magics and the footer length against the file's size
// and MaxFooterSize, reading 12 bytes.
func checkTail(r io.ReaderAt, size int64) (tailInfo, error) {
	var t tailInfo
	if size < 0 {
		return t, fmt.Errorf("negative file size %d: %w", size, ErrTruncated)
	}
	var head [len(magic)]byte
	n := min(size, int64(len(head)))
	if err := readAt(r, head[:n], 0); err != nil {
		return t, fmt.Errorf("read head: %w", err)
	}
	switch {
	case string(head[:n]) == magicEncrypted:
		return t, fmt.Errorf("encrypted footer (PARE magic) is not supported: %w", ErrNotParquet)
	case string(head[:n]) != magic[:n]:
		return t, fmt.Errorf("starts with %q, not the PAR1 magic: %w", head[:n], ErrNotParquet)
	case size == 0:
		return t, fmt.Errorf("empty file: %w", ErrTruncated)
	case size < minSize:
		return t, fmt.Errorf("%d bytes, shorter than the smallest parquet file (%d bytes): %w",
			size, minSize, ErrTruncated)
	}

	if err := readAt(r, t.end[:], size-tailLen); err != nil {
		return t, fmt.Errorf("read tail: %w", err)
	}
	length, err := footerLength(t.end, size)
	if err != nil {
		return t, err
	}
	if length > MaxFooterSize {
		return t, fmt.Errorf("footer length %d exceeds the %d MiB cap on footers: %w",
			length, MaxFooterSize>>20, ErrBadFooter)
	}
	t.length = length
	return t, nil
}

// footerLength checks the trailing magic and returns the footer length from
// the file's last 8 bytes, refusing a length the file cannot hold.
func footerLength(end [tailLen]byte, size int64) (int64, error) {
	if string(end[4:]) != magic {
		// A file cut inside the magic ends with a prefix of it; say so, as it
		// tells a short copy from a writer that died mid-file.
		for k := len(magic) - 1; k > 0; k-- {
			if bytes.HasSuffix(end[:], []byte(magic[:k])) {
				return 0, fmt.Errorf("ends with %q, the start of the PAR1 magic: %w", magic[:k], ErrTruncated)
			}
		}
		return 0, fmt.Errorf("no PAR1 magic at the end (ends with %q): %w", end[4:], ErrTruncated)
	}
	length := int64(binary.LittleEndian.Uint32(end[:4]))
	if limit := size - minSize; length > limit {
		return 0, fmt.Errorf("footer length %d exceeds file size %d (at most %d bytes fit): %w",
			length, size, limit, ErrTruncated)
	}
	return length, nil
}

// decodeFooter decodes the thrift FileMetaData after checking that decoding
// it cannot exhaust memory or the stack (see checkThrift).
func decodeFooter(footer []byte) (md *format.FileMetaData, err error) {
	if err := checkThrift(footer); err != nil {
		return nil, fmt.Errorf("footer: %v: %w", err, ErrBadFooter)
	}
	defer func() {
		if p := recover(); p != nil {
			md, err = nil, fmt.Errorf("footer: decoder panicked: %v: %w", p, ErrBadFooter)
		}
	}()
	md = new(format.FileMetaData)
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), footer, md); err != nil {
		return nil, fmt.Errorf("footer: %v: %w", err, ErrBadFooter)
	}
	return md, nil
}

// openFile has parquet-go open the file from the footer already in memory,
// the last word on whether a reader accepts it.
func openFile(t *footerTail, size int64) (err error) {
	defer func() {
		// parquet-go indexes slices with values from the footer; a footer
		// that slips past checkShape must cost the writer an error, not the
		// daemon its life.
		if p := recover(); p != nil {
			err = fmt.Errorf("footer: parquet reader panicked: %v: %w", p, ErrBadFooter)
		}
	}()
	_, err = parquet.OpenFile(t, size,
		parquet.SkipPageIndex(true),
		parquet.SkipBloomFilters(true),
	)
	if err != nil {
		return fmt.Errorf("footer: %v: %w", err, ErrBadFooter)
	}
	return nil
}

// readAt fills p from off, treating a short read as an error: size came from
// the caller and a file shorter than that is an I/O problem, not a verdict
// on its content.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		// io.ReaderAt may report io.EOF along with a full read at the end.
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%d bytes at offset %d: %w", len(p), off, err)
}
