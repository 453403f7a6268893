package gc

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"featurefs/blobstore"
	"featurefs/manifest"
)

// Problem names what is wrong between a manifest row and its blob.
type Problem string

const (
	// Healthy: the blob exists, is a regular file and has the row's size.
	Healthy Problem = ""
	// MissingBlob: no file at the row's path.
	MissingBlob Problem = "missing_blob"
	// SizeMismatch: the blob's size on disk differs from file_size_bytes.
	SizeMismatch Problem = "size_mismatch"
	// NotRegularFile: something other than a regular file (a symbolic link,
	// a directory) sits at the row's path.
	NotRegularFile Problem = "not_regular_file"
	// BadPath: the row's path does not name a file under blobs/.
	BadPath Problem = "bad_path"
)

// Actions a run takes on a row with a problem (reported as planned in a dry
// run).
const (
	ActionRemoveRow           = "remove_row"
	ActionRemoveRowQuarantine = "remove_row_quarantine_blob"
)

// action is what a run does about p.
func (p Problem) action() string {
	if p.quarantines() {
		return ActionRemoveRowQuarantine
	}
	return ActionRemoveRow
}

// quarantines reports whether a file exists at the row's path that must be
// kept for inspection rather than deleted.
func (p Problem) quarantines() bool { return p == SizeMismatch || p == NotRegularFile }

// Finding is the outcome of checking one row against its blob.
type Finding struct {
	Problem Problem
	// ActualSize is the size on disk of whatever is at the row's path
	// (0 when nothing is).
	ActualSize int64
}

// Stater gives a blob's file information without following symlinks.
type Stater interface {
	Stat(path string) (fs.FileInfo, error)
}

// Check compares the row e with its blob on disk, without following a
// symbolic link at the blob's path. An error means the check itself could
// not be made (permissions, I/O), not that the blob is bad.
func Check(store Stater, e manifest.Entry) (Finding, error) {
	if !validBlobPath(e.Path) {
		return Finding{Problem: BadPath}, nil
	}
	fi, err := store.Stat(e.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return Finding{Problem: MissingBlob}, nil
	}
	if err != nil {
		return Finding{}, fmt.Errorf("check blob of %s/%s: %w", e.Symbol, e.Key, err)
	}
	f := Finding{ActualSize: fi.Size()}
	switch {
	case !fi.Mode().IsRegular():
		f.Problem = NotRegularFile
	case fi.Size() != e.FileSize:
		f.Problem = SizeMismatch
	}
	return f, nil
}

// validBlobPath reports whether p, a path from the manifest, names a file
// strictly inside blobs/. The store confines paths too; checking here keeps
// a damaged or hostile row from ever steering a removal elsewhere.
func validBlobPath(p string) bool {
	if p == "" || path.Clean(p) != p || strings.Contains(p, `\`) {
		return false
	}
	if !strings.HasPrefix(p, blobstore.BlobsDir+"/") {
		return false
	}
	return filepath.IsLocal(filepath.FromSlash(p))
}
