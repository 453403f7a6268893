package blobstore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// checkPath validates a caller-supplied path: relative, slash separated,
// clean, no "..", at least one component below one of the dirs.
func checkPath(p string, dirs ...string) error {
	bad := p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") ||
		path.Clean(p) != p
	if !bad {
		for _, c := range strings.Split(p, "/") {
			if c == ".." || c == "." {
				bad = true
				break
			}
		}
	}
	if !bad {
		top, rest, ok := strings.Cut(p, "/")
		bad = !ok || rest == ""
		if !bad {
			bad = true
			for _, d := range dirs {
				if top == d {
					bad = false
					break
				}
			}
		}
	}
	if bad {
		return fmt.Errorf("%w: %q (want a relative path under %s/)", ErrInvalidPath, p, strings.Join(dirs, "/ or "))
	}
	return nil
}

// abs is rel joined to the root, for error messages.
func (s *Store) abs(rel string) string { return filepath.Join(s.root, filepath.FromSlash(rel)) }

// newName returns 32 random hex digits.
func newName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random name: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// blobPath is the blob path for name: blobs/ab/cd/<name>.parquet[.zst]. Two
// levels of 256 shards keep every directory to a few thousand entries even
// with hundreds of millions of blobs.
func blobPath(name string, compressed bool) (shard, rel string) {
	shard = BlobsDir + "/" + name[0:2] + "/" + name[2:4]
	rel = shard + "/" + name + ".parquet"
	if compressed {
		rel += ".zst"
	}
	return shard, rel
}

// Ref is a blob path in 17 bytes instead of a string of 52 or 56: the form to
// keep where many blob paths are held at once (a mount keeps one per inode
// the kernel holds, 100k after one `ls -l`).
type Ref struct {
	name       [16]byte
	compressed bool
}

// RefOf packs path, which must be blobs/ab/cd/<32 hex digits>.parquet[.zst]
// as Publish names blobs; ok is false for any other path, which the caller
// keeps as it is.
func RefOf(path string) (r Ref, ok bool) {
	base, found := strings.CutPrefix(path, BlobsDir+"/")
	if !found || len(base) < len("ab/cd/")+32 || base[2] != '/' || base[5] != '/' {
		return Ref{}, false
	}
	name, ext := base[6:6+32], base[6+32:]
	switch ext {
	case ".parquet":
	case ".parquet.zst":
		r.compressed = true
	default:
		return Ref{}, false
	}
	// Lower-case hex only, so that Path gives back exactly path.
	if strings.ToLower(name) != name || base[0:2] != name[0:2] || base[3:5] != name[2:4] {
		return Ref{}, false
	}
	if _, err := hex.Decode(r.name[:], []byte(name)); err != nil {
		return Ref{}, false
	}
	return r, true
}

// Path is the blob's path relative to the cache root.
func (r Ref) Path() string {
	_, rel := blobPath(hex.EncodeToString(r.name[:]), r.compressed)
	return rel
}

// The permissions of everything the store creates. Blobs are private to the
// cache root's owner whatever the mount shows or the root's own mode: other
// users read entries through the daemon (passthrough too uses the daemon's
// descriptor), never the files themselves. The umask can only remove bits.
const (
	fileMode = 0o600
	dirMode  = 0o700
)
