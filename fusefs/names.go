package fusefs

import (
	"strings"
	"syscall"
	"unicode/utf8"
)

// Names in the mount (docs/design.md, "Namespace").
const (
	// maxComponent is the longest symbol or key, in bytes.
	maxComponent = 200
	// entrySuffix ends every committed entry's file name.
	entrySuffix = ".parquet"
	// controlName is the virtual control directory under the root.
	controlName = ".control"
)

// nameKind classifies a file name inside a symbol directory.
type nameKind int

const (
	kindInvalid nameKind = iota
	kindEntry            // <key>.parquet
	kindScratch          // .anything: rsync and editor temporaries
)

// checkComponent validates a symbol or key: 1..200 bytes of UTF-8, not
// starting with '.', without '/' or NUL. The kernel already rejects '/' and
// NUL in a single component, but keys also arrive through rename targets and
// the manifest, so check everything.
func checkComponent(s string) syscall.Errno {
	switch {
	case s == "":
		return syscall.EINVAL
	case len(s) > maxComponent:
		return syscall.ENAMETOOLONG
	case s[0] == '.':
		return syscall.EINVAL
	case strings.ContainsAny(s, "/\x00"):
		return syscall.EINVAL
	case !utf8.ValidString(s):
		return syscall.EINVAL
	}
	return 0
}

// classify tells what a name inside a symbol directory is and, for an entry,
// its key. The errno explains an invalid name (EINVAL or ENAMETOOLONG).
func classify(name string) (nameKind, string, syscall.Errno) {
	if name == "." || name == ".." || name == "" || strings.ContainsRune(name, 0) || strings.ContainsRune(name, '/') {
		return kindInvalid, "", syscall.EINVAL
	}
	if name[0] == '.' {
		if !utf8.ValidString(name) {
			return kindInvalid, "", syscall.EINVAL
		}
		return kindScratch, "", 0
	}
	key, ok := strings.CutSuffix(name, entrySuffix)
	if !ok {
		return kindInvalid, "", syscall.EINVAL
	}
	if errno := checkComponent(key); errno != 0 {
		return kindInvalid, "", errno
	}
	return kindEntry, key, 0
}

// entryName is the file name of key.
func entryName(key string) string { return key + entrySuffix }
