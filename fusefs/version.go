package fusefs

import (
	"encoding/hex"

	"featurefs/blobstore"
	"featurefs/hashing"
	"featurefs/manifest"
)

// version is a committed version as an inode keeps it: the manifest row's
// fields that attributes, opens and extended attributes need, packed. The
// kernel can hold an inode for every entry of a listing (100k after one
// `ls -l`), and a row as the manifest returns it (five strings, two of them
// names the tree already holds) costs twice the memory.
type version struct {
	id          int64
	size        int64 // the parquet's size
	stored      int64 // the blob's size
	modTimeNS   int64
	createdTS   int64
	accessedTS  int64
	accessCount int64
	startTS     int64
	endTS       int64
	rows        int64

	hash   [32]byte
	blob   blobstore.Ref
	method methodCode
	// odd holds what the packed fields cannot: a hash that is not 64
	// lower-case hex digits, a blob path blobstore.Ref cannot hold, a hash
	// method this version does not know. nil for every version this daemon
	// commits.
	odd *versionText
}

// versionText is a version's text the packed fields cannot hold: hash and
// path count where hashSet and pathSet say so (either may be empty text),
// method where the version's method is methodOther.
type versionText struct {
	hash, path, method string
	hashSet, pathSet   bool
}

// methodCode is a hash method in one byte.
type methodCode uint8

const (
	methodOther methodCode = iota // in odd.method
	methodFull
	methodFooter
)

func newVersion(e *manifest.Entry) version {
	v := version{
		id:          e.ID,
		size:        e.LogicalSize,
		stored:      e.FileSize,
		modTimeNS:   e.ModTimeNS,
		createdTS:   e.CreatedTS,
		accessedTS:  e.LastAccessedTS,
		accessCount: e.AccessCount,
		startTS:     e.StartTS,
		endTS:       e.EndTS,
		rows:        e.Rows,
	}
	var odd versionText
	if len(e.Hash) != 2*len(v.hash) || !decodeLowerHex(v.hash[:], e.Hash) {
		v.hash, odd.hash, odd.hashSet = [32]byte{}, e.Hash, true
	}
	var packed bool
	if v.blob, packed = blobstore.RefOf(e.Path); !packed {
		odd.path, odd.pathSet = e.Path, true
	}
	switch hashing.Method(e.HashMethod) {
	case hashing.Full:
		v.method = methodFull
	case hashing.Footer:
		v.method = methodFooter
	default:
		odd.method = e.HashMethod
	}
	if odd != (versionText{}) || v.method == methodOther {
		v.odd = &odd
	}
	return v
}

// decodeLowerHex decodes s into dst when s is lower-case hex, the only form
// hashHex gives back unchanged.
func decodeLowerHex(dst []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// path is the blob's path relative to the cache root.
func (v *version) path() string {
	if v.odd != nil && v.odd.pathSet {
		return v.odd.path
	}
	return v.blob.Path()
}

// hashHex is the content hash as the manifest stores it.
func (v *version) hashHex() string {
	if v.odd != nil && v.odd.hashSet {
		return v.odd.hash
	}
	return hex.EncodeToString(v.hash[:])
}

// hashMethod is the hash method as the manifest stores it.
func (v *version) hashMethod() string {
	switch v.method {
	case methodFull:
		return string(hashing.Full)
	case methodFooter:
		return string(hashing.Footer)
	}
	return v.odd.method
}
