package hashing

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// schemaTree is the shape of a footer's flattened schema.
type schemaTree struct {
	// parent holds the index of each element's parent, -1 for the root.
	parent []int
	// leaves holds the element index of every primitive column in schema
	// order, which is also the order of a row group's column chunks.
	leaves []int
}

// checkShape rebuilds the schema tree and checks that every row group has one
// column chunk per leaf. parquet.OpenFile trusts both before it checks them:
// it sizes buffers by leaves times row groups and by the sum of all column
// path lengths, and recurses once per schema level, so a small crafted footer
// could otherwise cost gigabytes or the stack.
func checkShape(md *format.FileMetaData) (schemaTree, error) {
	s := md.Schema
	if len(s) == 0 {
		return schemaTree{}, fmt.Errorf("footer has no schema: %w", ErrBadFooter)
	}
	if s[0].Type.Valid {
		return schemaTree{}, fmt.Errorf("schema root %q is a column, not a group: %w", s[0].Name, ErrBadFooter)
	}
	t := schemaTree{parent: make([]int, len(s))}
	type group struct{ elem, left int }
	var open []group // groups whose children are still being listed
	for i := range s {
		e := &s[i]
		children := 0
		if e.NumChildren.Valid {
			children = int(e.NumChildren.V)
		}
		switch {
		case children < 0:
			return schemaTree{}, fmt.Errorf("schema element %d (%q) has %d children: %w", i, e.Name, children, ErrBadFooter)
		case e.Type.Valid && children > 0:
			return schemaTree{}, fmt.Errorf("schema element %d (%q) is both a column and a group: %w", i, e.Name, ErrBadFooter)
		}
		t.parent[i] = -1
		if i > 0 {
			if len(open) == 0 {
				return schemaTree{}, fmt.Errorf("schema has %d elements past the root's last child: %w", len(s)-i, ErrBadFooter)
			}
			t.parent[i] = open[len(open)-1].elem
			open[len(open)-1].left--
		}
		if e.Type.Valid {
			t.leaves = append(t.leaves, i)
		}
		if children > 0 {
			if len(open) >= parquet.MaxColumnDepth {
				return schemaTree{}, fmt.Errorf("schema nests deeper than %d levels: %w", parquet.MaxColumnDepth, ErrBadFooter)
			}
			open = append(open, group{elem: i, left: children})
		}
		for len(open) > 0 && open[len(open)-1].left == 0 {
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		g := open[len(open)-1]
		return schemaTree{}, fmt.Errorf("schema lacks %d of the children of %q: %w", g.left, s[g.elem].Name, ErrBadFooter)
	}
	for i := range md.RowGroups {
		if n := len(md.RowGroups[i].Columns); n != len(t.leaves) {
			return schemaTree{}, fmt.Errorf("row group %d has %d column chunks for %d columns: %w",
				i, n, len(t.leaves), ErrBadFooter)
		}
	}
	return t, nil
}

// path returns the dotted path of schema element i, without the root.
func (t schemaTree) path(s []format.SchemaElement, i int) string {
	var names []string
	for ; i > 0; i = t.parent[i] {
		names = append(names, s[i].Name)
	}
	slices.Reverse(names)
	return strings.Join(names, ".")
}

// describe reads the row count and the time range from a checked footer.
func describe(md *format.FileMetaData, t schemaTree) Info {
	info := Info{Rows: md.NumRows}
	leaf, kind, ok := timeColumn(md, t)
	if !ok {
		return info
	}
	info.TimeColumn = t.path(md.Schema, t.leaves[leaf])
	info.StartTS, info.EndTS = timeRange(md.RowGroups, leaf, kind)
	return info
}

// timeColumn picks the column whose statistics give the file's time range:
// the pandas index when the pandas metadata names a top-level timestamp
// column as one, else the first timestamp column in schema order. It returns
// the column's leaf index (its column chunk in every row group).
func timeColumn(md *format.FileMetaData, t schemaTree) (leaf int, kind timeKind, ok bool) {
	for _, name := range pandasIndexColumns(md.KeyValueMetadata) {
		for j, e := range t.leaves {
			if t.parent[e] != 0 || md.Schema[e].Name != name {
				continue
			}
			if kind, ok := timeKindOf(&md.Schema[e]); ok {
				return j, kind, true
			}
		}
	}
	for j, e := range t.leaves {
		if kind, ok := timeKindOf(&md.Schema[e]); ok {
			return j, kind, true
		}
	}
	return 0, 0, false
}

// pandasIndexColumns returns the column names listed as the index in the
// pandas metadata that pandas (through pyarrow) writes, in order. A RangeIndex
// is stored as a description, not a column, and yields no name.
func pandasIndexColumns(kv []format.KeyValue) []string {
	i := slices.IndexFunc(kv, func(kv format.KeyValue) bool { return kv.Key == "pandas" })
	if i < 0 {
		return nil
	}
	var meta struct {
		IndexColumns []json.RawMessage `json:"index_columns"`
	}
	// Metadata that does not parse is not pandas' to trust: fall back to the
	// first timestamp column rather than reject a file a reader would accept.
	if json.Unmarshal([]byte(kv[i].Value), &meta) != nil {
		return nil
	}
	var names []string
	for _, raw := range meta.IndexColumns {
		var name string
		if json.Unmarshal(raw, &name) == nil {
			names = append(names, name)
		}
	}
	return names
}

// timeKind is how a timestamp column stores its values.
type timeKind int

const (
	int64Millis timeKind = iota + 1
	int64Micros
	int64Nanos
	// int96Nanos is the legacy Impala/Spark timestamp: nanoseconds within
	// the day (8 bytes), then the Julian day (4 bytes), little endian.
	int96Nanos
)

func timeKindOf(e *format.SchemaElement) (timeKind, bool) {
	if !e.Type.Valid {
		return 0, false
	}
	switch e.Type.V {
	case format.Int64:
		if e.LogicalType.Value != nil {
			// The logical type supersedes the converted type when present.
			ts, ok := e.LogicalType.Value.(*format.TimestampType)
			if !ok {
				return 0, false
			}
			switch ts.Unit.Value.(type) {
			case *format.MilliSeconds:
				return int64Millis, true
			case *format.MicroSeconds:
				return int64Micros, true
			case *format.NanoSeconds:
				return int64Nanos, true
			}
			return 0, false
		}
		if e.ConvertedType.Valid {
			switch e.ConvertedType.V {
			case deprecated.TimestampMillis:
				return int64Millis, true
			case deprecated.TimestampMicros:
				return int64Micros, true
			}
		}
	case format.Int96:
		return int96Nanos, true
	}
	return 0, false
}

// seconds converts a plain-encoded statistic to Unix seconds, rounded down
// so that a range always contains its values.
func (k timeKind) seconds(b []byte) (int64, bool) {
	const julianUnixEpoch = 2440588 // Julian day of 1970-01-01
	var perSecond int64
	switch k {
	case int64Millis:
		perSecond = 1e3
	case int64Micros:
		perSecond = 1e6
	case int64Nanos:
		perSecond = 1e9
	case int96Nanos:
		if len(b) != 12 {
			return 0, false
		}
		nanos := int64(binary.LittleEndian.Uint64(b[:8]))
		day := int64(binary.LittleEndian.Uint32(b[8:]))
		return (day-julianUnixEpoch)*86400 + floorDiv(nanos, 1e9), true
	default:
		return 0, false
	}
	if len(b) != 8 {
		return 0, false
	}
	return floorDiv(int64(binary.LittleEndian.Uint64(b)), perSecond), true
}

// timeRange returns the least minimum and the greatest maximum of column leaf
// over all row groups, in Unix seconds. A row group without values (no rows,
// or only nulls) bounds nothing and is skipped; any other row group without
// usable statistics leaves the range unknown, reported as 0, 0 rather than a
// range that might miss some of the file's rows.
func timeRange(rowGroups []format.RowGroup, leaf int, kind timeKind) (start, end int64) {
	found := false
	for i := range rowGroups {
		c := &rowGroups[i].Columns[leaf].MetaData
		if c.NumValues <= 0 || c.Statistics.NullCount >= c.NumValues {
			continue
		}
		lo, okLo := kind.stat(c.Statistics.MinValue, c.Statistics.Min)
		hi, okHi := kind.stat(c.Statistics.MaxValue, c.Statistics.Max)
		if !okLo || !okHi {
			return 0, 0
		}
		if !found || lo < start {
			start = lo
		}
		if !found || hi > end {
			end = hi
		}
		found = true
	}
	return start, end
}

// stat converts min_value (or max_value), falling back to the deprecated
// min (max). The deprecated fields were computed with a signed comparison,
// right for INT64 timestamps; for INT96 they were byte-wise and meaningless,
// so an INT96 column has a range only when it has the new statistics.
func (k timeKind) stat(value, old []byte) (int64, bool) {
	if s, ok := k.seconds(value); ok {
		return s, true
	}
	if k == int96Nanos {
		return 0, false
	}
	return k.seconds(old)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
