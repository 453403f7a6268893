package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tick is one row of the synthetic market data the tests write.
type tick struct {
	TS     time.Time `parquet:"ts,timestamp(microsecond)"`
	Price  float64   `parquet:"price"`
	Volume int64     `parquet:"volume"`
}

// tickStart is the first row's time; row i is i seconds later.
var tickStart = time.Date(2024, 3, 1, 14, 30, 0, 0, time.UTC)

// makeParquet returns a parquet file of rows ticks, different per seed
// (the same seed always gives the same bytes).
func makeParquet(t testing.TB, rows int, seed uint64) []byte {
	t.Helper()
	data, err := tickParquet(rows, seed)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// writeFixture writes a parquet file of rows ticks into dir and returns its path.
func writeFixture(t testing.TB, dir, name string, rows int, seed uint64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, makeParquet(t, rows, seed), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// duck runs SQL statements in DuckDB (through node) and returns the last
// statement's rows. It skips when the client is not installed and CI is
// unset; in CI the client is part of the set-up, so its absence fails.
func duck(t testing.TB, statements ...string) []map[string]any {
	t.Helper()
	rows, err := duckErr(t, statements...)
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	return rows
}

func duckErr(t testing.TB, statements ...string) ([]map[string]any, error) {
	t.Helper()
	client := filepath.Join(repoRoot, "test", "client")
	if _, err := os.Stat(filepath.Join(client, "node_modules", "@duckdb", "node-api")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("DuckDB client not installed (npm ci in test/client): %v", err)
		}
		t.Skip("DuckDB client not installed; run npm ci in test/client")
	}
	cmd := exec.Command("node", append([]string{filepath.Join(client, "duck.mjs")}, statements...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &duckError{msg: strings.TrimSpace(stderr.String()), err: err}
	}
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("duckdb output %q: %v", line, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

type duckError struct {
	msg string
	err error
}

func (e *duckError) Error() string { return e.err.Error() + ": " + e.msg }
