package hashing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// The expectations come from the SQL in testdata/generate.sh, which prints
// them again as DuckDB reads the files back.
func TestInspectDescribesDuckDBFiles(t *testing.T) {
	const (
		barsStart = 1704187800 // 2024-01-02 09:30:00.123456, row group 1
		barsEnd   = 1704202200 // 2024-01-02 13:30:00.123456, row group 0
	)
	tests := []struct {
		file       string
		rows       int64
		start, end int64
		column     string
	}{
		{"ts_snappy.parquet", 5000, barsStart, barsEnd, "ts"},
		{"ts_zstd.parquet", 5000, barsStart, barsEnd, "ts"},
		{"ts_uncompressed.parquet", 5000, barsStart, barsEnd, "ts"},
		// Row group 1, which held the earliest minutes, is all NULL.
		{"ts_nulls.parquet", 5000, 1704193800, barsEnd, "ts"},
		// -99.75 s rounds down to -100.
		{"ts_ms.parquet", 200, -100, 99, "ts"},
		// 12:01:39.999999999 rounds down to 12:01:39.
		{"ts_ns.parquet", 100, 1710072000, 1710072099, "ts"},
		{"no_time.parquet", 300, 0, 0, ""},
		{"empty_rows.parquet", 0, 0, 0, "ts"},
		// The index is the last of two timestamp columns; pandas metadata picks it.
		{"pandas_index.parquet", 240, 1715004000, 1715018340, "__index_level_0__"},
		// A RangeIndex names no column: the first timestamp column, event_ts.
		{"pandas_range_index.parquet", 240, 1685577600, 1686438000, "event_ts"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b := readFixture(t, tt.file)
			got, err := Inspect(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			want := Info{Rows: tt.rows, StartTS: tt.start, EndTS: tt.end, TimeColumn: tt.column, FooterLength: footerLen(b)}
			if got != want {
				t.Errorf("Inspect = %+v, want %+v", got, want)
			}
		})
	}
}

func TestInspectRejectsCorruptFiles(t *testing.T) {
	good := readFixture(t, "ts_snappy.parquet")
	size := len(good)
	flen := int(footerLen(good))
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	withLength := func(n uint32) []byte {
		return edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[size-8:], n)
			return b
		})
	}
	garbage := make([]byte, flen)
	rand.NewChaCha8([32]byte{1}).Read(garbage)

	tests := []struct {
		name string
		file []byte
		want error
		msg  string // a part of the message that tells the user what is wrong
	}{
		{"empty file", nil, ErrTruncated, "empty"},
		{"3 bytes of the magic", []byte("PAR"), ErrTruncated, "shorter than"},
		{"3 bytes of text", []byte("abc"), ErrNotParquet, `"abc"`},
		{"both magics only", []byte("PAR1PAR1"), ErrTruncated, "shorter than"},
		{"no leading magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), ErrNotParquet, "PAR1"},
		{"encrypted footer", edit(func(b []byte) []byte { copy(b, "PARE"); return b }), ErrNotParquet, "encrypted"},
		{"csv", []byte("symbol,ts,price\nAAPL,1,2\n"), ErrNotParquet, `"symb"`},
		{"no trailing magic", edit(func(b []byte) []byte { copy(b[size-4:], "XXXX"); return b }), ErrTruncated, "no PAR1 magic at the end"},
		{"bytes appended", append(bytes.Clone(good), "trailer"...), ErrTruncated, "no PAR1 magic at the end"},
		{"cut inside the magic by 1", good[:size-1], ErrTruncated, `"PAR"`},
		{"cut inside the magic by 3", good[:size-3], ErrTruncated, `"P"`},
		{"cut after the footer length", good[:size-4], ErrTruncated, "no PAR1 magic at the end"},
		{"cut inside the footer", good[:size-20], ErrTruncated, "no PAR1 magic at the end"},
		{"cut mid-file", good[:size/2], ErrTruncated, "no PAR1 magic at the end"},
		{"footer length past the start", withLength(uint32(size - 11)), ErrTruncated, "footer length"},
		{"footer length 4 GiB", withLength(^uint32(0)), ErrTruncated, "exceeds file size"},
		{"footer length off by one", withLength(uint32(flen - 1)), ErrBadFooter, "footer"},
		{"footer length zero", withLength(0), ErrBadFooter, "footer"},
		{"empty footer", []byte("PAR1\x00\x00\x00\x00PAR1"), ErrBadFooter, "footer"},
		{"garbage footer", edit(func(b []byte) []byte { copy(b[size-8-flen:], garbage); return b }), ErrBadFooter, "footer"},
		{"zeroed footer", edit(func(b []byte) []byte { clear(b[size-8-flen : size-8]); return b }), ErrBadFooter, "footer"},
		{"empty struct footer", withFooter([]byte{0}), ErrBadFooter, "footer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Inspect(bytes.NewReader(tt.file), int64(len(tt.file)))
			checkSentinel(t, err, tt.want)
			if err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

// sentinels lists every error a validation failure wraps exactly one of.
var sentinels = []error{ErrNotParquet, ErrTruncated, ErrBadFooter, ErrBadLayout}

// checkSentinel fails unless err wraps want and no other sentinel.
func checkSentinel(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) != (s == want) {
			t.Errorf("error %q: errors.Is(err, %q) = %t", err, s, !(s == want))
		}
	}
}

// Each of these footers is small but, decoded naively, would allocate
// gigabytes or recurse until the stack overflows; none may.
func TestInspectRefusesFootersThatWouldExhaustMemory(t *testing.T) {
	schema := func(s ...format.SchemaElement) *format.FileMetaData {
		return &format.FileMetaData{Version: 1, Schema: s}
	}
	group := func(name string, children int32) format.SchemaElement {
		return format.SchemaElement{Name: name, NumChildren: thrift.New(children)}
	}
	column := func(name string) format.SchemaElement {
		return format.SchemaElement{Name: name, Type: thrift.New(format.Int64), RepetitionType: thrift.New(format.Required)}
	}
	deepSchema := schema(group("root", 1))
	for range 300 {
		deepSchema.Schema = append(deepSchema.Schema, group("g", 1))
	}
	deepSchema.Schema = append(deepSchema.Schema, column("x"))
	// 4000 columns and 4000 row groups without column chunks: parquet-go
	// would reserve 16 million chunk pointers (128 MB) before noticing.
	wide := schema(group("root", 4000))
	for range 4000 {
		wide.Schema = append(wide.Schema, column("x"))
	}
	wide.RowGroups = make([]format.RowGroup, 4000)

	tests := []struct {
		name   string
		footer []byte
	}{
		// Field 2 (schema) as a list of 2^31-1 structs, in 6 bytes.
		{"huge list", []byte{0x29, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00}},
		// Field 6 (created_by) as a 2^31-1 byte string.
		{"huge string", []byte{0x68, 0xff, 0xff, 0xff, 0xff, 0x07, 'x', 0x00}},
		// An unknown field holding a map of 2^31-1 entries.
		{"huge map", []byte{0xfb, 0xff, 0xff, 0xff, 0xff, 0x07, 0x88, 0x00}},
		// Struct fields nested 100000 deep, each one byte.
		{"deep structs", append(bytes.Repeat([]byte{0x1c}, 100000), make([]byte, 100001)...)},
		// Lists of one list nested 100000 deep.
		{"deep lists", append([]byte{0x19}, bytes.Repeat([]byte{0x19}, 100000)...)},
		{"deep schema", marshal(t, deepSchema)},
		{"row groups without chunks", marshal(t, wide)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := withFooter(tt.footer)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Inspect(bytes.NewReader(file), int64(len(file)))
			runtime.ReadMemStats(&after)
			checkSentinel(t, err, ErrBadFooter)
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
				t.Errorf("allocated %d MiB for a %d-byte footer", n>>20, len(tt.footer))
			}
		})
	}
}

func marshal(tb testing.TB, md *format.FileMetaData) []byte {
	tb.Helper()
	b, err := thrift.Marshal(new(thrift.CompactProtocol), md)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Footers that decode but describe something no reader can use.
func TestInspectRejectsInconsistentFooters(t *testing.T) {
	base := func() *format.FileMetaData {
		return timeFile([]format.SchemaElement{microsColumn("ts")}, nil, 10, stats(0, 1))
	}
	tests := []struct {
		name   string
		mutate func(md *format.FileMetaData)
	}{
		{"no schema", func(md *format.FileMetaData) { md.Schema = nil }},
		{"root is a column", func(md *format.FileMetaData) { md.Schema = md.Schema[1:] }},
		{"missing child", func(md *format.FileMetaData) { md.Schema[0].NumChildren = thrift.New[int32](2) }},
		{"extra element", func(md *format.FileMetaData) { md.Schema = append(md.Schema, microsColumn("x")) }},
		{"negative children", func(md *format.FileMetaData) { md.Schema[0].NumChildren = thrift.New[int32](-1) }},
		{"column with children", func(md *format.FileMetaData) { md.Schema[1].NumChildren = thrift.New[int32](1) }},
		{"row group missing a chunk", func(md *format.FileMetaData) { md.RowGroups[0].Columns = nil }},
		{"row group with an extra chunk", func(md *format.FileMetaData) {
			md.RowGroups[0].Columns = append(md.RowGroups[0].Columns, md.RowGroups[0].Columns[0])
		}},
		{"negative rows", func(md *format.FileMetaData) { md.NumRows, md.RowGroups[0].NumRows = -1, -1 }},
		// parquet-go indexes its columns with this and panics.
		{"sorting column out of range", func(md *format.FileMetaData) {
			md.RowGroups[0].SortingColumns = []format.SortingColumn{{ColumnIdx: 7}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := base()
			tt.mutate(md)
			file := buildParquet(t, md)
			_, err := Inspect(bytes.NewReader(file), int64(len(file)))
			checkSentinel(t, err, ErrBadFooter)
		})
	}
}

// timeFile builds a footer with the given top-level columns and one row
// group per entry of groups, each giving every column the same statistics.
func timeFile(columns []format.SchemaElement, kv []format.KeyValue, valuesPerGroup int64, groups ...format.Statistics) *format.FileMetaData {
	md := &format.FileMetaData{
		Version:          1,
		Schema:           append([]format.SchemaElement{{Name: "schema", NumChildren: thrift.New(int32(len(columns)))}}, columns...),
		KeyValueMetadata: kv,
	}
	for _, s := range groups {
		rg := format.RowGroup{NumRows: valuesPerGroup}
		for _, c := range columns {
			rg.Columns = append(rg.Columns, format.ColumnChunk{MetaData: format.ColumnMetaData{
				Type:         c.Type.V,
				Encoding:     []format.Encoding{format.Plain},
				PathInSchema: []string{c.Name},
				Codec:        format.Uncompressed,
				NumValues:    valuesPerGroup,
				Statistics:   s,
			}})
		}
		md.RowGroups = append(md.RowGroups, rg)
		md.NumRows += valuesPerGroup
	}
	return md
}

func microsColumn(name string) format.SchemaElement {
	return format.SchemaElement{
		Name:           name,
		Type:           thrift.New(format.Int64),
		RepetitionType: thrift.New(format.Optional),
		LogicalType: format.LogicalType{Value: &format.TimestampType{
			IsAdjustedToUTC: true,
			Unit:            format.TimeUnit{Value: &format.MicroSeconds{}},
		}},
	}
}

func convertedColumn(name string, ct deprecated.ConvertedType) format.SchemaElement {
	return format.SchemaElement{
		Name:           name,
		Type:           thrift.New(format.Int64),
		RepetitionType: thrift.New(format.Optional),
		ConvertedType:  thrift.New(ct),
	}
}

// stats gives min_value and max_value in seconds, for microsecond columns.
func stats(minSec, maxSec int64) format.Statistics {
	return format.Statistics{MinValue: i64(minSec * 1e6), MaxValue: i64(maxSec * 1e6)}
}

// Cases no DuckDB file covers: old statistics, INT96, gaps in statistics,
// pandas metadata that does not help.
func TestInspectDescribesTimeColumns(t *testing.T) {
	int96 := format.SchemaElement{Name: "t96", Type: thrift.New(format.Int96), RepetitionType: thrift.New(format.Optional)}
	// 2024-01-02 is Unix day 19724; Julian day 2460312.
	int96Stats := format.Statistics{MinValue: i96(2460312, (9*3600+30*60)*1e9+5e8), MaxValue: i96(2460313, 1)}
	pandas := func(json string) []format.KeyValue { return []format.KeyValue{{Key: "pandas", Value: json}} }
	price := format.SchemaElement{Name: "price", Type: thrift.New(format.Double), RepetitionType: thrift.New(format.Optional)}

	tests := []struct {
		name       string
		md         *format.FileMetaData
		start, end int64
		column     string
	}{
		{"new statistics", timeFile([]format.SchemaElement{microsColumn("ts")}, nil, 10, stats(100, 200), stats(50, 150)), 50, 200, "ts"},
		{"deprecated statistics", timeFile([]format.SchemaElement{microsColumn("ts")}, nil, 10,
			format.Statistics{Min: i64(-1), Max: i64(2e6 + 1)}), -1, 2, "ts"},
		{"new statistics win", timeFile([]format.SchemaElement{microsColumn("ts")}, nil, 10,
			format.Statistics{Min: i64(1e6), Max: i64(9e6), MinValue: i64(3e6), MaxValue: i64(4e6)}), 3, 4, "ts"},
		{"converted type millis", timeFile([]format.SchemaElement{convertedColumn("ts", deprecated.TimestampMillis)}, nil, 10,
			format.Statistics{MinValue: i64(1500), MaxValue: i64(2999)}), 1, 2, "ts"},
		{"converted type micros", timeFile([]format.SchemaElement{convertedColumn("ts", deprecated.TimestampMicros)}, nil, 10,
			stats(7, 8)), 7, 8, "ts"},
		{"time of day is not a timestamp", timeFile([]format.SchemaElement{convertedColumn("tod", deprecated.TimeMicros)}, nil, 10,
			stats(7, 8)), 0, 0, ""},
		{"int96", timeFile([]format.SchemaElement{int96}, nil, 10, int96Stats), 1704187800, 1704240000, "t96"},
		{"int96 with only deprecated statistics", timeFile([]format.SchemaElement{int96}, nil, 10,
			format.Statistics{Min: int96Stats.MinValue, Max: int96Stats.MaxValue}), 0, 0, "t96"},
		{"a row group without statistics", timeFile([]format.SchemaElement{microsColumn("ts")}, nil, 10,
			stats(100, 200), format.Statistics{}), 0, 0, "ts"},
		{"an all-null row group", timeFile([]format.SchemaElement{microsColumn("ts")}, nil, 10,
			stats(100, 200), format.Statistics{NullCount: 10}), 100, 200, "ts"},
		{"no row groups", timeFile([]format.SchemaElement{microsColumn("ts")}, nil, 10), 0, 0, "ts"},
		{"first timestamp column", timeFile([]format.SchemaElement{price, microsColumn("a"), microsColumn("b")}, nil, 10,
			stats(1, 2)), 1, 2, "a"},
		{"pandas index", timeFile([]format.SchemaElement{microsColumn("a"), microsColumn("idx")},
			pandas(`{"index_columns": ["idx"]}`), 10, stats(1, 2)), 1, 2, "idx"},
		{"pandas index not a timestamp", timeFile([]format.SchemaElement{price, microsColumn("a")},
			pandas(`{"index_columns": ["price"]}`), 10, stats(1, 2)), 1, 2, "a"},
		{"pandas multi-index", timeFile([]format.SchemaElement{microsColumn("a"), price, microsColumn("t")},
			pandas(`{"index_columns": ["price", "t"]}`), 10, stats(1, 2)), 1, 2, "t"},
		{"pandas metadata that is not JSON", timeFile([]format.SchemaElement{microsColumn("a"), microsColumn("idx")},
			pandas(`{"index_columns": ["idx"`), 10, stats(1, 2)), 1, 2, "a"},
		{"nested timestamp", &format.FileMetaData{
			Version: 1,
			Schema: []format.SchemaElement{
				{Name: "schema", NumChildren: thrift.New[int32](2)},
				price,
				{Name: "bar", RepetitionType: thrift.New(format.Optional), NumChildren: thrift.New[int32](1)},
				microsColumn("ts"),
			},
		}, 0, 0, "bar.ts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := buildParquet(t, tt.md)
			got, err := Inspect(bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			if got.StartTS != tt.start || got.EndTS != tt.end || got.TimeColumn != tt.column || got.Rows != tt.md.NumRows {
				t.Errorf("Inspect = %+v, want rows %d, %d..%d from %q", got, tt.md.NumRows, tt.start, tt.end, tt.column)
			}
		})
	}
}

// Inspect reads the head, the tail and the footer once each, and otherwise
// only inside column chunks, where the page headers are.
func TestInspectReadsOnlyFooterAndPageHeaders(t *testing.T) {
	check := func(t *testing.T, r *countingReader, fixture []byte, size int64) {
		t.Helper()
		flen := footerLen(fixture)
		allowed := []span{{0, 4}, {size - 8 - flen, 8 + flen}}
		var chunks int64
		for _, rg := range footerOf(t, fixture).RowGroups {
			for _, c := range rg.Columns {
				start := chunkStart(&c.MetaData)
				allowed = append(allowed, span{start, c.MetaData.TotalCompressedSize})
				chunks += c.MetaData.TotalCompressedSize
			}
		}
		if bad := r.outside(allowed...); len(bad) > 0 {
			t.Errorf("read outside head, tail and column chunks: %v", bad)
		}
		if got, most := r.bytesRead(), 12+flen+chunks; got > most {
			t.Errorf("read %d bytes in %d reads, want at most %d (head, tail, footer and chunks once)", got, len(r.reads), most)
		}
	}
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			b := readFixture(t, name)
			r := &countingReader{r: bytes.NewReader(b)}
			if _, err := Inspect(r, int64(len(b))); err != nil {
				t.Fatal(err)
			}
			check(t, r, b, int64(len(b)))
		})
	}
	t.Run("1 GiB", func(t *testing.T) {
		fixture := readFixture(t, "ts_snappy.parquet")
		const size = 1 << 30
		r := &countingReader{r: sparseParquet(t, fixture, size)}
		info, err := Inspect(r, size)
		if err != nil {
			t.Fatal(err)
		}
		if info.Rows != 5000 {
			t.Errorf("rows = %d, want the footer's 5000", info.Rows)
		}
		check(t, r, fixture, size)
	})
}

// A file shorter than the size it is said to have is an I/O problem, not a
// verdict on the file: no sentinel.
func TestInspectReportsShortReadsAsIOErrors(t *testing.T) {
	b := readFixture(t, "ts_snappy.parquet")
	_, err := Inspect(bytes.NewReader(b), int64(len(b))+100)
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			t.Errorf("error %q wraps %q", err, s)
		}
	}
}
