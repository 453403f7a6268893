package fusefs

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestErrorLogEscapesEveryFieldToOneLine(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		path, reason string
		line         string
	}{
		{"AAPL/k.parquet", "commit: not a parquet file", "2026-03-04T05:06:07Z\tAAPL/k.parquet\tcommit: not a parquet file"},
		{"日本/é.parquet", "x", "2026-03-04T05:06:07Z\t日本/é.parquet\tx"},
		{"S/a\n2026-01-01T00:00:00Z\tfake/line.parquet\tforged.parquet", "bad",
			`2026-03-04T05:06:07Z	S/a\n2026-01-01T00:00:00Z\tfake/line.parquet\tforged.parquet	bad`},
		{"S/cr\r.parquet", "two\nlines", `2026-03-04T05:06:07Z	S/cr\r.parquet	two\nlines`},
		{"S/bell\x07\x1b[31m.parquet", "r", `2026-03-04T05:06:07Z	S/bell\a\x1b[31m.parquet	r`},
		{"S/bad\xff.parquet", "r", `2026-03-04T05:06:07Z	S/bad\xff.parquet	r`},
		{"S/back\\slash \"q\".parquet", "r", `2026-03-04T05:06:07Z	S/back\\slash \"q\".parquet	r`},
		{"S/sep\u2028.parquet", "r", `2026-03-04T05:06:07Z	S/sep\u2028.parquet	r`},
	}
	for _, tt := range tests {
		l := newErrorLog(10)
		l.add(at, tt.path, tt.reason)
		got := string(l.format())
		if got != tt.line+"\n" {
			t.Errorf("path %q reason %q:\n got %q\nwant %q", tt.path, tt.reason, got, tt.line+"\n")
			continue
		}
		// The documented way to read a line back gives the fields exactly.
		fields := strings.Split(strings.TrimSuffix(got, "\n"), "\t")
		if len(fields) != 3 {
			t.Errorf("path %q: %d fields, want 3", tt.path, len(fields))
			continue
		}
		for i, want := range []string{tt.path, tt.reason} {
			back, err := strconv.Unquote(`"` + fields[i+1] + `"`)
			if err != nil || back != want {
				t.Errorf("field %q unquotes to %q, %v; want %q", fields[i+1], back, err, want)
			}
		}
	}
}
