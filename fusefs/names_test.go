package fusefs

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

func TestClassify(t *testing.T) {
	long := strings.Repeat("a", maxComponent)
	tests := []struct {
		name  string
		kind  nameKind
		key   string
		errno syscall.Errno
	}{
		{"abc.parquet", kindEntry, "abc", 0},
		{strings.Repeat("f", 64) + ".parquet", kindEntry, strings.Repeat("f", 64), 0},
		{"ES=F.parquet", kindEntry, "ES=F", 0},
		{"BRK.B.parquet", kindEntry, "BRK.B", 0},
		{"日本.parquet", kindEntry, "日本", 0},
		{long + ".parquet", kindEntry, long, 0},
		{long + "a.parquet", kindInvalid, "", syscall.ENAMETOOLONG},
		{".parquet", kindScratch, "", 0},
		{".abc.parquet.XXXXXX", kindScratch, "", 0},
		{".swp", kindScratch, "", 0},
		{"abc.txt", kindInvalid, "", syscall.EINVAL},
		{"abc", kindInvalid, "", syscall.EINVAL},
		{"abc.PARQUET", kindInvalid, "", syscall.EINVAL},
		{".", kindInvalid, "", syscall.EINVAL},
		{"..", kindInvalid, "", syscall.EINVAL},
		{"", kindInvalid, "", syscall.EINVAL},
		{"a/b.parquet", kindInvalid, "", syscall.EINVAL},
		{"a\x00b.parquet", kindInvalid, "", syscall.EINVAL},
		{"\xff\xfe.parquet", kindInvalid, "", syscall.EINVAL},
		{".\xff", kindInvalid, "", syscall.EINVAL},
	}
	for _, tt := range tests {
		kind, key, errno := classify(tt.name)
		if kind != tt.kind || key != tt.key || errno != tt.errno {
			t.Errorf("classify(%q) = %v, %q, %v; want %v, %q, %v", tt.name, kind, key, errno, tt.kind, tt.key, tt.errno)
		}
	}
}

func TestCheckComponent(t *testing.T) {
	tests := []struct {
		in    string
		errno syscall.Errno
	}{
		{"AAPL", 0},
		{"ES=F", 0},
		{"BRK.B", 0},
		{strings.Repeat("x", maxComponent), 0},
		{strings.Repeat("x", maxComponent+1), syscall.ENAMETOOLONG},
		{"", syscall.EINVAL},
		{".hidden", syscall.EINVAL},
		{".", syscall.EINVAL},
		{"..", syscall.EINVAL},
		{"a/b", syscall.EINVAL},
		{"a\x00", syscall.EINVAL},
		{"\xc3\x28", syscall.EINVAL},
	}
	for _, tt := range tests {
		if got := checkComponent(tt.in); got != tt.errno {
			t.Errorf("checkComponent(%q) = %v, want %v", tt.in, got, tt.errno)
		}
	}
}

// FuzzClassify checks the naming rules (docs/design.md, "Namespace") on any input: a name is
// an entry only if its key is a valid component, scratch only if it starts
// with a dot, and nothing with '/' or NUL is ever accepted.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"abc.parquet", ".x.parquet.tmp", "..", ".", "a/b.parquet", "\xff.parquet", strings.Repeat("k", 201) + ".parquet"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		kind, key, errno := classify(name)
		switch kind {
		case kindEntry:
			if errno != 0 || entryName(key) != name || checkComponent(key) != 0 {
				t.Fatalf("entry %q: key %q errno %v", name, key, errno)
			}
			if len(key) == 0 || len(key) > maxComponent || key[0] == '.' || !utf8.ValidString(key) {
				t.Fatalf("entry %q has an invalid key %q", name, key)
			}
		case kindScratch:
			if errno != 0 || name[0] != '.' || name == "." || name == ".." {
				t.Fatalf("scratch %q errno %v", name, errno)
			}
		case kindInvalid:
			if errno != syscall.EINVAL && errno != syscall.ENAMETOOLONG {
				t.Fatalf("invalid %q with errno %v", name, errno)
			}
		}
		if kind != kindInvalid && strings.ContainsAny(name, "/\x00") {
			t.Fatalf("accepted %q", name)
		}
	})
}

func TestParseGCCommand(t *testing.T) {
	tests := []struct {
		in     string
		dryRun bool
		ok     bool
	}{
		{"run\n", false, true},
		{"run", false, true},
		{"\n", false, true},
		{"", false, true},
		{"  dry-run \n", true, true},
		{"dry-run", true, true},
		{"bogus\n", false, false},
		{"run now", false, false},
		{"RUN", false, false},
		{"dry-run\nrun", false, false},
	}
	for _, tt := range tests {
		dry, err := ParseGCCommand([]byte(tt.in))
		if (err == nil) != tt.ok || (err == nil && dry != tt.dryRun) {
			t.Errorf("ParseGCCommand(%q) = %v, %v", tt.in, dry, err)
		}
		if err != nil && !errors.Is(err, ErrBadCommand) {
			t.Errorf("ParseGCCommand(%q) error %v does not wrap ErrBadCommand", tt.in, err)
		}
	}
}

// FuzzParseGCCommand: only run, dry-run and blank lines are commands, and a
// rejected command's message stays short whatever was written.
func FuzzParseGCCommand(f *testing.F) {
	for _, s := range []string{"run\n", "dry-run\n", "\n", "bogus", "run\x00", strings.Repeat("x", 4096)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dry, err := ParseGCCommand(data)
		cmd := strings.TrimSpace(string(data))
		switch {
		case err == nil && cmd != "" && cmd != "run" && cmd != "dry-run":
			t.Fatalf("accepted %q", data)
		case err == nil && dry != (cmd == "dry-run"):
			t.Fatalf("%q: dryRun %v", data, dry)
		case err != nil && len(err.Error()) > 400:
			t.Fatalf("error message of %d bytes", len(err.Error()))
		}
	})
}

func TestErrorLogKeepsNewestLast(t *testing.T) {
	l := newErrorLog(3)
	for i := 0; i < 5; i++ {
		l.add(timeAt(i), "SYM/k.parquet", "reason "+string(rune('a'+i)))
	}
	lines := strings.Split(strings.TrimSpace(string(l.format())), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3: %q", len(lines), lines)
	}
	if !strings.HasSuffix(lines[0], "reason c") || !strings.HasSuffix(lines[2], "reason e") {
		t.Fatalf("order: %q", lines)
	}
	if f := strings.Split(lines[2], "\t"); len(f) != 3 || f[1] != "SYM/k.parquet" {
		t.Fatalf("fields: %q", f)
	}
}
