package integration

// DuckDB as the independent parquet client: it writes entries with COPY TO
// and reads the mount through globs, as a notebook would.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// num reads a numeric column of a DuckDB row (big integers come as strings).
func num(t testing.TB, row map[string]any, col string) int64 {
	t.Helper()
	switch v := row[col].(type) {
	case float64:
		return int64(v)
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("column %s = %q", col, v)
		}
		return n
	}
	t.Fatalf("column %s = %#v (%T)", col, row[col], row[col])
	return 0
}

func TestDuckDBCopyToMountCommits(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	p := m.path("AAPL", "duck.parquet")
	const rows = 10_000
	// 2024-03-01 14:30:00 UTC plus one second a row.
	first := tickStart.Unix()
	duck(t, fmt.Sprintf(`COPY (SELECT make_timestamp(%d::BIGINT * 1000000 + i * 1000000) AS ts, i AS n, i * 0.5 AS price
		FROM range(%d) r(i)) TO '%s' (FORMAT parquet)`, first, rows, p))

	if got := ls(t, m.path("AAPL")); !slices.Equal(got, []string{"duck.parquet"}) {
		t.Fatalf("AAPL lists %v after COPY TO", got)
	}
	attrs := xattrs(t, p)
	want := map[string]string{
		"user.featurefs.rows":     strconv.Itoa(rows),
		"user.featurefs.start_ts": strconv.FormatInt(first, 10),
		"user.featurefs.end_ts":   strconv.FormatInt(first+rows-1, 10),
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
	if sum := sha256File(t, p); attrs["user.featurefs.hash"] != sum {
		t.Errorf("hash xattr %s, sha256 of the bytes %s", attrs["user.featurefs.hash"], sum)
	}
	got := duck(t, fmt.Sprintf(`SELECT count(*) AS c, sum(n) AS s, min(epoch(ts))::BIGINT AS lo, max(epoch(ts))::BIGINT AS hi
		FROM read_parquet('%s')`, p))
	if len(got) != 1 || num(t, got[0], "c") != rows || num(t, got[0], "s") != rows*(rows-1)/2 ||
		num(t, got[0], "lo") != first || num(t, got[0], "hi") != first+rows-1 {
		t.Fatalf("read back through the mount: %v", got)
	}

	// COPY TO over the existing entry replaces it.
	duck(t, fmt.Sprintf(`COPY (SELECT make_timestamp(%d::BIGINT * 1000000) AS ts, 42 AS n) TO '%s' (FORMAT parquet)`, first, p))
	got = duck(t, fmt.Sprintf(`SELECT count(*) AS c, sum(n) AS s FROM read_parquet('%s')`, p))
	if num(t, got[0], "c") != 1 || num(t, got[0], "s") != 42 {
		t.Fatalf("after a second COPY TO: %v", got)
	}
	if got := ls(t, m.path("AAPL")); !slices.Equal(got, []string{"duck.parquet"}) {
		t.Fatalf("AAPL lists %v after a replacing COPY TO", got)
	}
	if got := xattrInt(t, p, "rows"); got != 1 {
		t.Fatalf("rows xattr %d after the replace", got)
	}
}

func TestDuckDBReadsGlobOfMount(t *testing.T) {
	m := mountT(t)
	src := t.TempDir()
	sizes := map[string]int{"AAPL/a.parquet": 1000, "AAPL/b.parquet": 2500, "MSFT/c.parquet": 700}
	sh(t, "mkdir", m.path("AAPL"), m.path("MSFT"))
	var total int
	for i, name := range []string{"AAPL/a.parquet", "AAPL/b.parquet", "MSFT/c.parquet"} {
		f := writeFixture(t, src, fmt.Sprintf("f%d.parquet", i), sizes[name], uint64(300+i))
		sh(t, "cp", f, m.path(name))
		total += sizes[name]
	}
	query := `SELECT count(*) AS c, sum(volume) AS v, sum(price * 100)::BIGINT AS p FROM read_parquet('%s')`
	want := duck(t, fmt.Sprintf(query, filepath.Join(src, "*.parquet")))
	got := duck(t, fmt.Sprintf(query, m.path("*", "*.parquet")))
	if num(t, got[0], "c") != int64(total) {
		t.Fatalf("count over the mount's glob: %v, want %d rows", got, total)
	}
	if num(t, got[0], "v") != num(t, want[0], "v") || num(t, got[0], "p") != num(t, want[0], "p") {
		t.Fatalf("sums over the mount %v, over the sources %v", got, want)
	}
	// Per-file, by filename, as a notebook slices it.
	rows := duck(t, fmt.Sprintf(`SELECT string_split(filename, '/')[-2] AS sym, count(*) AS c
		FROM read_parquet('%s', filename = true) GROUP BY ALL ORDER BY sym`, m.path("*", "*.parquet")))
	if len(rows) != 2 || rows[0]["sym"] != "AAPL" || num(t, rows[0], "c") != 3500 || rows[1]["sym"] != "MSFT" || num(t, rows[1], "c") != 700 {
		t.Fatalf("rows by symbol: %v", rows)
	}
}

// pandasRow is laid out as pandas (through pyarrow) writes a frame with a
// DatetimeIndex named "ts": data columns first, the index last, and the
// index named in the "pandas" key-value metadata. "created" is a timestamp
// column too, over another range, so only the metadata says which one is
// the time axis.
type pandasRow struct {
	Created time.Time `parquet:"created,timestamp(millisecond)"`
	Price   float64   `parquet:"price"`
	TS      time.Time `parquet:"ts,timestamp(nanosecond)"`
}

func pandasParquet(t testing.TB, rows int, start time.Time) []byte {
	t.Helper()
	meta, err := json.Marshal(map[string]any{
		"index_columns":  []string{"ts"},
		"column_indexes": []any{},
		"columns": []map[string]any{
			{"name": "created", "field_name": "created", "pandas_type": "datetime", "numpy_type": "datetime64[ns]"},
			{"name": "price", "field_name": "price", "pandas_type": "float64", "numpy_type": "float64"},
			{"name": "ts", "field_name": "ts", "pandas_type": "datetime", "numpy_type": "datetime64[ns]"},
		},
		"creator":        map[string]string{"library": "pyarrow", "version": "15.0.0"},
		"pandas_version": "2.2.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[pandasRow](&buf, parquet.KeyValueMetadata("pandas", string(meta)))
	batch := make([]pandasRow, rows)
	for i := range batch {
		batch[i] = pandasRow{
			Created: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour),
			Price:   float64(i),
			// Minutes, in reverse order: the range comes from statistics,
			// not from the first and last rows.
			TS: start.Add(time.Duration(rows-1-i) * time.Minute),
		}
	}
	if _, err := w.Write(batch); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTimeRangeXattrsFromPandasIndex(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	start := time.Date(2024, 6, 3, 13, 30, 0, 0, time.UTC)
	const rows = 390
	src := filepath.Join(t.TempDir(), "frame.parquet")
	if err := os.WriteFile(src, pandasParquet(t, rows, start), 0o644); err != nil {
		t.Fatal(err)
	}
	p := m.path("AAPL", "frame.parquet")
	sh(t, "cp", src, p)
	wantStart, wantEnd := start.Unix(), start.Add((rows-1)*time.Minute).Unix()
	if got := xattrInt(t, p, "start_ts"); got != wantStart {
		t.Errorf("start_ts %d, want the index's first time %d (%v)", got, wantStart, start)
	}
	if got := xattrInt(t, p, "end_ts"); got != wantEnd {
		t.Errorf("end_ts %d, want the index's last time %d", got, wantEnd)
	}
	if got := xattrInt(t, p, "rows"); got != rows {
		t.Errorf("rows %d, want %d", got, rows)
	}
	// DuckDB agrees on the range of the ts column.
	got := duck(t, fmt.Sprintf(`SELECT epoch(min(ts))::BIGINT AS lo, epoch(max(ts))::BIGINT AS hi FROM read_parquet('%s')`, p))
	if num(t, got[0], "lo") != wantStart || num(t, got[0], "hi") != wantEnd {
		t.Fatalf("DuckDB reads the ts range as %v", got)
	}
}

func TestTimeRangeXattrsZeroWithoutTimestamp(t *testing.T) {
	m := mountT(t)
	sh(t, "mkdir", m.path("AAPL"))
	p := m.path("AAPL", "plain.parquet")
	duck(t, fmt.Sprintf(`COPY (SELECT i AS n, 'x' || i AS label FROM range(100) r(i)) TO '%s' (FORMAT parquet)`, p))
	if s, e := xattrInt(t, p, "start_ts"), xattrInt(t, p, "end_ts"); s != 0 || e != 0 {
		t.Fatalf("start_ts %d, end_ts %d for a file without a time column; want 0 and 0", s, e)
	}
	if got := xattrInt(t, p, "rows"); got != 100 {
		t.Fatalf("rows %d", got)
	}
}
