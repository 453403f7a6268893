package hashing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go/format"
)

const (
	// maxPageHeaderSize caps one page header. Headers are tens of bytes, or a
	// few KiB with page statistics of long strings; the cap keeps a header
	// that claims otherwise from growing the read buffer further.
	maxPageHeaderSize = 1 << 20
	// pageWindow is how much of a chunk one read fetches when its pages are
	// small, so that several headers arrive in one read.
	pageWindow = 64 << 10
	// headerRead is what one read fetches when pages are larger than
	// pageWindow: the next header is then the only thing of use in the
	// window, and it is almost always far shorter than this.
	headerRead = 4 << 10
)

// chunkRange is where a column chunk's pages lie in the file.
type chunkRange struct {
	start, end int64
	rowGroup   int
	column     int
	path       string
}

func (c chunkRange) String() string {
	return fmt.Sprintf("row group %d column %d (%s)", c.rowGroup, c.column, c.path)
}

// checkLayout checks what every reader relies on before it decodes a page:
// each column chunk lies in the data region [4, dataEnd), between the head
// magic and the footer, overlaps no other chunk, and is a sequence of pages
// whose headers parse and whose sizes walk exactly to the chunk's end. It
// reads page headers only, never a page body, so a body that decodes to
// garbage under an intact header passes. Chunks need not be contiguous:
// page indexes and bloom filters may sit between them.
func checkLayout(ctx context.Context, r io.ReaderAt, md *format.FileMetaData, dataEnd int64) error {
	var chunks []chunkRange
	for g, rg := range md.RowGroups {
		for c, cc := range rg.Columns {
			if cc.FilePath != "" || len(cc.EncryptedColumnMetadata) > 0 || cc.CryptoMetadata.Value != nil {
				// Pages in another file, or encrypted pages (their headers
				// too), are beyond what can be checked without it or the key.
				continue
			}
			m := &cc.MetaData
			cr := chunkRange{rowGroup: g, column: c, path: strings.Join(m.PathInSchema, ".")}
			if m.TotalCompressedSize == 0 && m.NumValues == 0 {
				// No pages at all: readers read nothing here.
				continue
			}
			cr.start = m.DataPageOffset
			// Writers that write no dictionary page leave its offset unset
			// or 0 (which can never be a page: the magic is there).
			if d := m.DictionaryPageOffset; d > 0 && d < cr.start {
				cr.start = d
			}
			if m.TotalCompressedSize <= 0 || cr.start < int64(len(magic)) ||
				cr.start > dataEnd || m.TotalCompressedSize > dataEnd-cr.start {
				return fmt.Errorf("%v: %d bytes at offset %d, outside the data region [%d, %d): %w",
					cr, m.TotalCompressedSize, cr.start, len(magic), dataEnd, ErrBadLayout)
			}
			cr.end = cr.start + m.TotalCompressedSize
			chunks = append(chunks, cr)
		}
	}
	slices.SortFunc(chunks, func(a, b chunkRange) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(chunks); i++ {
		if a, b := chunks[i-1], chunks[i]; b.start < a.end {
			return fmt.Errorf("%v at [%d, %d) overlaps %v at [%d, %d): %w",
				b, b.start, b.end, a, a.start, a.end, ErrBadLayout)
		}
	}
	w := pageWalker{r: r, buf: make([]byte, pageWindow)}
	for _, c := range chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.walk(c); err != nil {
			return err
		}
	}
	return nil
}

// pageWalker reads page headers through a window over the file, so that a
// chunk of small pages costs a read per window rather than per page, and a
// chunk of large pages a small read per page.
type pageWalker struct {
	r   io.ReaderAt
	buf []byte // buf[:n] holds the file from off
	off int64
	n   int
	// small is whether the last page was small enough for the next
	// header to be worth a whole window.
	small bool
}

// walk follows the page headers of c from its start and checks that they
// end exactly at its end.
func (w *pageWalker) walk(c chunkRange) error {
	pages := 0
	for pos := c.start; pos != c.end; pages++ {
		h, err := w.header(pos, c.end)
		if err != nil {
			var ioErr ioError
			if errors.As(err, &ioErr) {
				return fmt.Errorf("%v: %w", c, ioErr.err)
			}
			return fmt.Errorf("%v: page %d at offset %d: %v: %w", c, pages, pos, err, ErrBadLayout)
		}
		next := pos + int64(h.length) + int64(h.compressed)
		if next > c.end {
			return fmt.Errorf("%v: page %d at offset %d (%d-byte header, %d bytes of data) runs past the chunk's end at %d: %w",
				c, pages, pos, h.length, h.compressed, c.end, ErrBadLayout)
		}
		w.small = int64(h.length)+int64(h.compressed) < pageWindow/2
		pos = next
	}
	return nil
}

// ioError marks a failure of the reader, not a verdict on the file.
type ioError struct{ err error }

func (e ioError) Error() string { return e.err.Error() }

// header parses the page header at pos, which lies before end. It reads
// more only when the header does not fit what it has, up to
// maxPageHeaderSize; the buffer never grows with the sizes a header
// declares, which only move pos.
func (w *pageWalker) header(pos, end int64) (pageHeader, error) {
	for want := headerRead; ; want *= 2 {
		want = min(want, maxPageHeaderSize)
		avail := int(min(int64(want), end-pos))
		if pos < w.off || pos+int64(avail) > w.off+int64(w.n) {
			if err := w.fill(pos, end, avail); err != nil {
				return pageHeader{}, ioError{err}
			}
		}
		b := w.buf[pos-w.off : w.n]
		more := int64(len(b)) < end-pos
		h, err := parsePageHeader(b, more)
		if errors.Is(err, errShort) && more {
			if len(b) >= maxPageHeaderSize {
				return h, fmt.Errorf("page header longer than %d bytes", maxPageHeaderSize)
			}
			continue
		}
		return h, err
	}
}

// fill reads at least need bytes from pos into the buffer: a window's worth
// after small pages, just need otherwise, never past end.
func (w *pageWalker) fill(pos, end int64, need int) error {
	n := need
	if w.small {
		n = max(n, pageWindow)
	}
	n = int(min(int64(n), end-pos))
	if n > len(w.buf) {
		w.buf = make([]byte, n)
	}
	w.off, w.n = pos, 0
	if err := readAt(w.r, w.buf[:n], pos); err != nil {
		return fmt.Errorf("read page header: %w", err)
	}
	w.n = n
	return nil
}

// pageHeader is what the walk needs of a thrift PageHeader.
type pageHeader struct {
	length     int // encoded length of the header itself
	typ        int32
	compressed int32
}

// parsePageHeader decodes the fields of a compact-protocol PageHeader that
// place the page (type, uncompressed_page_size, compressed_page_size) and
// skips the rest with the footer's bounded walker, without allocating. If
// prefix, more of the chunk follows b, and a header that does not fit in b
// fails with errShort.
func parsePageHeader(b []byte, prefix bool) (pageHeader, error) {
	w := thriftWalker{b: b, prefix: prefix}
	var h pageHeader
	var seen [4]bool
	var id int64
	for {
		fh, err := w.byte()
		if err != nil {
			return h, err
		}
		if fh == tStop {
			break
		}
		if d := int64(fh >> 4); d != 0 {
			id += d
		} else {
			v, err := w.uvarint()
			if err != nil {
				return h, err
			}
			id = int64(v>>1) ^ -int64(v&1)
		}
		t := fh & 0x0f
		if id >= 1 && id <= 3 {
			if t != tI32 {
				return h, fmt.Errorf("page header field %d has thrift type %d, not i32", id, t)
			}
			v, err := w.uvarint()
			if err != nil {
				return h, err
			}
			if v > 0xffffffff {
				return h, fmt.Errorf("page header field %d overflows 32 bits", id)
			}
			x := int32(uint32(v>>1) ^ -uint32(v&1))
			switch id {
			case 1:
				h.typ = x
			case 3:
				h.compressed = x
			}
			if x < 0 && id != 1 {
				return h, fmt.Errorf("negative page size %d", x)
			}
			seen[id] = true
			continue
		}
		if err := w.value(t, 0, false); err != nil {
			return h, err
		}
	}
	if !seen[1] || !seen[2] || !seen[3] {
		return h, errors.New("page header lacks its type or sizes")
	}
	if h.typ < int32(format.DataPage) || h.typ > int32(format.DataPageV2) {
		return h, fmt.Errorf("unknown page type %d", h.typ)
	}
	h.length = w.off
	return h, nil
}
