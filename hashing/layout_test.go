package hashing

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// footerOf decodes the footer of a valid file.
func footerOf(tb testing.TB, b []byte) *format.FileMetaData {
	tb.Helper()
	md, err := decodeFooter(b[int64(len(b))-8-footerLen(b) : len(b)-8])
	if err != nil {
		tb.Fatal(err)
	}
	return md
}

// frame appends md as the footer to body (which starts with the magic).
func frame(tb testing.TB, body []byte, md *format.FileMetaData) []byte {
	tb.Helper()
	footer := marshalT(tb, md)
	b := append(bytes.Clone(body), footer...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(footer)))
	return append(b, magic...)
}

// withNewFooter replaces the footer of b by md, keeping everything before it.
func withNewFooter(tb testing.TB, b []byte, md *format.FileMetaData) []byte {
	return frame(tb, b[:int64(len(b))-8-footerLen(b)], md)
}

// chunkStart is where a chunk's first page is, as checkLayout finds it.
func chunkStart(m *format.ColumnMetaData) int64 {
	if d := m.DictionaryPageOffset; d > 0 && d < m.DataPageOffset {
		return d
	}
	return m.DataPageOffset
}

// pageFile is a file of one column chunk: the page header h followed by
// body zero bytes.
func pageFile(tb testing.TB, h []byte, body int64) []byte {
	tb.Helper()
	md := timeFile([]format.SchemaElement{microsColumn("ts")}, nil, 10, stats(0, 1))
	m := &md.RowGroups[0].Columns[0].MetaData
	m.DataPageOffset, m.TotalCompressedSize = int64(len(magic)), int64(len(h))+body
	b := append([]byte(magic), h...)
	return frame(tb, append(b, make([]byte, body)...), md)
}

func pageHeaderBytes(tb testing.TB, compressed int32, statsLen int) []byte {
	tb.Helper()
	dp := format.DataPageHeader{NumValues: 10}
	if statsLen > 0 {
		dp.Statistics.MaxValue = make([]byte, statsLen)
	}
	return marshalT(tb, &format.PageHeader{
		Type:                 format.DataPage,
		UncompressedPageSize: compressed,
		CompressedPageSize:   compressed,
		DataPageHeader:       thrift.New(dp),
	})
}

func TestInspectRejectsPagesThatDoNotMatchTheFooter(t *testing.T) {
	a := readFixture(t, "ts_snappy.parquet")
	b := readFixture(t, "ts_zstd.parquet")
	md := footerOf(t, a)
	dataEnd := int64(len(a)) - 8 - footerLen(a)
	first := &md.RowGroups[0].Columns[0].MetaData
	second := &md.RowGroups[0].Columns[1].MetaData
	editFooter := func(f func(md *format.FileMetaData)) []byte {
		md := footerOf(t, a)
		f(md)
		return withNewFooter(t, a, md)
	}
	randomOver := func(from, to int64) []byte {
		c := bytes.Clone(a)
		rand.NewChaCha8([32]byte{2}).Read(c[from:to])
		return c
	}
	shifted := append(append([]byte(magic), make([]byte, 16)...), a[len(magic):]...)
	hdr := pageHeaderBytes(t, 100, 0)
	bigHeader := pageHeaderBytes(t, 0, maxPageHeaderSize+1)
	// type, sizes 0, then data_page_header.statistics.max_value of 2^31-1.
	hugeStats := []byte{0x15, 0, 0x15, 0, 0x15, 0, 0x2c, 0x5c, 0x58, 0xff, 0xff, 0xff, 0xff, 0x07}

	tests := []struct {
		name string
		file []byte
		msg  string
	}{
		{"two files concatenated", append(bytes.Clone(a), b...), ""},
		{"a file appended to another", append(bytes.Clone(b), a...), ""},
		{"random bytes over the data pages", randomOver(4, dataEnd), ""},
		{"random bytes over one chunk", randomOver(chunkStart(second), chunkStart(second)+second.TotalCompressedSize), "column 1"},
		{"data shifted from the footer's offsets", shifted, "page 0"},
		{"overlapping chunks", editFooter(func(md *format.FileMetaData) {
			m := &md.RowGroups[0].Columns[1].MetaData
			m.DataPageOffset, m.DictionaryPageOffset = first.DataPageOffset, 0
		}), "overlaps"},
		{"chunk before the data region", editFooter(func(md *format.FileMetaData) {
			m := &md.RowGroups[0].Columns[0].MetaData
			m.DataPageOffset, m.DictionaryPageOffset = 2, 0
		}), "outside the data region"},
		{"chunk over the footer", editFooter(func(md *format.FileMetaData) {
			md.RowGroups[0].Columns[0].MetaData.TotalCompressedSize = dataEnd
		}), "outside the data region"},
		{"chunk past the end", editFooter(func(md *format.FileMetaData) {
			m := &md.RowGroups[0].Columns[0].MetaData
			m.DataPageOffset, m.DictionaryPageOffset = math.MaxInt64-10, 0
		}), "outside the data region"},
		{"negative chunk size", editFooter(func(md *format.FileMetaData) {
			md.RowGroups[0].Columns[0].MetaData.TotalCompressedSize = -1
		}), "outside the data region"},
		{"chunk shorter than its pages", editFooter(func(md *format.FileMetaData) {
			md.RowGroups[0].Columns[0].MetaData.TotalCompressedSize--
		}), "runs past the chunk's end"},
		// A page header claiming 2^31 bytes of statistics fails at the cap,
		// never allocating what it claims.
		{"huge page statistics", pageFile(t, hugeStats, 2<<20), "page header longer than"},
		{"chunk longer than its pages", pageFile(t, hdr, 100+10), "page 1"},
		{"page of 2 GiB in a small chunk", pageFile(t, pageHeaderBytes(t, math.MaxInt32, 0), 100), "runs past"},
		{"negative page size", pageFile(t, pageHeaderBytes(t, -5, 0), 100), "negative page size"},
		{"garbage page header", pageFile(t, bytes.Repeat([]byte{0xff}, 64), 100), "page 0"},
		{"zeroed page header", pageFile(t, nil, 164), "lacks its type"},
		{"page header over the cap", pageFile(t, bigHeader, 10), "page header longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Inspect(bytes.NewReader(tt.file), int64(len(tt.file)))
			checkSentinel(t, err, ErrBadLayout)
			if err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

// A page header may declare any size: the walk only moves by it. A file
// whose one page fills a 1 GiB hole is walked with a few small reads.
func TestInspectSeeksOverLargePages(t *testing.T) {
	const size = 1 << 30
	md := timeFile([]format.SchemaElement{microsColumn("ts")}, nil, 10, stats(0, 1))
	m := &md.RowGroups[0].Columns[0].MetaData
	// Two pages of just under 512 MiB each fill the data region.
	const half = size/2 - 1<<20
	h := pageHeaderBytes(t, half, 0)
	m.DataPageOffset, m.TotalCompressedSize = 4, 2*(int64(len(h))+half)
	footer := marshalT(t, md)
	total := 4 + m.TotalCompressedSize + int64(len(footer)) + 8

	f, err := os.Create(filepath.Join(t.TempDir(), "big.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(b []byte, off int64) {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	write([]byte(magic), 0)
	write(h, 4)
	write(h, 4+int64(len(h))+half)
	tail := frame(t, nil, md)
	write(tail, total-int64(len(tail)))

	r := &countingReader{r: f}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Inspect(r, total); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := r.bytesRead(); n > 3*headerRead+int64(len(footer))+12 {
		t.Errorf("read %d bytes in %d reads to walk 2 pages", n, len(r.reads))
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("allocated %d KiB", n>>10)
	}
}

// No declared footer length may make Inspect allocate more than the cap or
// take long: a sparse file whose tail declares a footer of gigabytes costs a
// 12-byte read.
func TestInspectRefusesFootersOverTheCap(t *testing.T) {
	const size = 4500 << 20
	for _, length := range []int64{MaxFooterSize + 1, 1 << 30, 3840 << 20, math.MaxUint32} {
		path := filepath.Join(t.TempDir(), "sparse.parquet")
		if err := os.WriteFile(path, []byte(magic), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		end := binary.LittleEndian.AppendUint32(nil, uint32(length))
		if _, err := f.WriteAt(append(end, magic...), size-8); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err = Inspect(f, size)
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		f.Close()
		checkSentinel(t, err, ErrBadFooter)
		if err != nil && !strings.Contains(err.Error(), "16 MiB cap") {
			t.Errorf("footer of %d bytes: error %q does not name the cap", length, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("footer of %d bytes: allocated %d MiB", length, n>>20)
		}
		if elapsed > time.Second {
			t.Errorf("footer of %d bytes: took %v", length, elapsed)
		}
	}
}

// A validation waits for its share of the budget, and gives up when its
// context ends rather than allocate beyond it.
func TestValidatorWaitsForBudget(t *testing.T) {
	b := readFixture(t, "ts_snappy.parquet")
	v := NewValidator(1)
	if err := v.budget.Acquire(context.Background(), v.size); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := v.Inspect(ctx, bytes.NewReader(b), int64(len(b)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Inspect with the budget spent = %v, want a deadline error", err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			t.Errorf("error %q wraps %q", err, s)
		}
	}
	v.budget.Release(v.size)
	for range 3 {
		// Every validation gives its share back, failed or not.
		if _, err := v.Inspect(context.Background(), bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Inspect(context.Background(), bytes.NewReader(b[:len(b)-1]), int64(len(b)-1)); err == nil {
			t.Fatal("accepted a cut file")
		}
	}
	if !v.budget.TryAcquire(v.size) {
		t.Error("budget not given back")
	}
}

type tick struct {
	Symbol string  `parquet:"symbol,dict"`
	TS     int64   `parquet:"ts,timestamp(microsecond)"`
	Price  float64 `parquet:"price"`
	Note   string  `parquet:"note,optional"`
}

// Files real writers produce pass: parquet-go with and without
// dictionaries, compression, many pages and row groups, page indexes and
// bloom filters between the chunks and the footer; DuckDB's fixtures.
func TestInspectAcceptsFilesOfRealWriters(t *testing.T) {
	rows := make([]tick, 20000)
	for i := range rows {
		rows[i] = tick{Symbol: []string{"AAPL", "MSFT", "GOOG"}[i%3], TS: int64(i) * 1e6, Price: float64(i) / 7}
		if i%5 == 0 {
			rows[i].Note = strings.Repeat("n", i%50)
		}
	}
	write := func(opts ...parquet.WriterOption) []byte {
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[tick](&buf, opts...)
		for i := 0; i < len(rows); i += 5000 {
			if _, err := w.Write(rows[i : i+5000]); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	files := map[string][]byte{
		"parquet-go defaults":     write(),
		"parquet-go small pages":  write(parquet.PageBufferSize(1024), parquet.Compression(&parquet.Snappy)),
		"parquet-go bloom filter": write(parquet.BloomFilters(parquet.SplitBlockFilter(10, "symbol")), parquet.Compression(&parquet.Zstd)),
		"parquet-go page v1":      write(parquet.DataPageVersion(1), parquet.PageBufferSize(4096)),
	}
	for _, name := range fixtureNames(t) {
		files["duckdb "+name] = readFixture(t, name)
	}
	for name, b := range files {
		t.Run(name, func(t *testing.T) {
			info, err := Inspect(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(name, "parquet-go") && info.Rows != int64(len(rows)) {
				t.Errorf("rows = %d, want %d", info.Rows, len(rows))
			}
		})
	}
}
