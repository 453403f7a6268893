package hashing

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// readFixture returns a file written by testdata/generate.sh.
func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixtureNames lists every committed parquet fixture.
func fixtureNames(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.parquet"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no fixtures in testdata (%v): run testdata/generate.sh", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}

// footerLen reads the footer length a parquet file declares.
func footerLen(b []byte) int64 {
	return int64(binary.LittleEndian.Uint32(b[len(b)-8:]))
}

// span is a byte range [off, off+n).
type span struct{ off, n int64 }

// countingReader records every read made through it.
type countingReader struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads []span
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.mu.Lock()
	c.reads = append(c.reads, span{off, int64(n)})
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) bytesRead() int64 {
	var total int64
	for _, s := range c.reads {
		total += s.n
	}
	return total
}

// outside returns the reads that fall outside all of the allowed spans.
func (c *countingReader) outside(allowed ...span) []span {
	var bad []span
	for _, s := range c.reads {
		ok := false
		for _, a := range allowed {
			if s.off >= a.off && s.off+s.n <= a.off+a.n {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, s)
		}
	}
	return bad
}

// withFooter frames a raw footer as a parquet file with no pages: enough for
// everything in this package, which never reads a page.
func withFooter(footer []byte) []byte {
	b := append([]byte("PAR1"), footer...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(footer)))
	return append(b, "PAR1"...)
}

// buildParquet encodes md as the footer of a parquet file in which every
// column chunk is one empty data page: enough for the layout check, and for
// everything else in this package, which never reads a page body. It sets
// the chunks' offsets and sizes in md.
func buildParquet(tb testing.TB, md *format.FileMetaData) []byte {
	tb.Helper()
	b := []byte(magic)
	for g := range md.RowGroups {
		for c := range md.RowGroups[g].Columns {
			m := &md.RowGroups[g].Columns[c].MetaData
			page := marshalT(tb, &format.PageHeader{
				Type:           format.DataPage,
				DataPageHeader: thrift.New(format.DataPageHeader{NumValues: int32(m.NumValues)}),
			})
			m.DataPageOffset, m.TotalCompressedSize = int64(len(b)), int64(len(page))
			m.TotalUncompressedSize = m.TotalCompressedSize
			b = append(b, page...)
		}
	}
	footer := marshalT(tb, md)
	b = append(b, footer...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(footer)))
	return append(b, magic...)
}

func marshalT(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := thrift.Marshal(new(thrift.CompactProtocol), v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sparseParquet writes a size-byte file that starts with the body of a real
// parquet file (everything before its footer), has a hole in the middle and
// ends with that file's footer, length and magic. The footer's offsets still
// point at the pages, which are where they were; the hole costs no disk and
// lies between the chunks and the footer, where readers look at nothing.
func sparseParquet(tb testing.TB, fixture []byte, size int64) *os.File {
	tb.Helper()
	tail := 8 + footerLen(fixture)
	f, err := os.Create(filepath.Join(tb.TempDir(), "sparse.parquet"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	body := fixture[:int64(len(fixture))-tail]
	if _, err := f.WriteAt(body, 0); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.WriteAt(fixture[int64(len(fixture))-tail:], size-tail); err != nil {
		tb.Fatal(err)
	}
	return f
}

// i64 encodes a plain INT64 statistic.
func i64(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }

// i96 encodes a plain INT96 timestamp statistic.
func i96(julianDay uint32, nanosOfDay int64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(nanosOfDay))
	return binary.LittleEndian.AppendUint32(b, julianDay)
}
