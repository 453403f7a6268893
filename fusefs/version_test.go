package fusefs

import (
	"testing"

	"featurefs/manifest"
)

func TestVersionGivesBackTheRow(t *testing.T) {
	const hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for _, c := range []struct {
		e manifest.Entry
		// packed: every text field fits the packed form (no side record).
		packed bool
	}{
		{manifest.Entry{Path: "blobs/b5/8e/b58e0651a67c686bd8b53bd622480d9a.parquet.zst", Hash: hash, HashMethod: "full"}, true},
		{manifest.Entry{Path: "blobs/00/ff/00ff0651a67c686bd8b53bd622480d9a.parquet", Hash: hash, HashMethod: "footer"}, true},
		// Rows written by hand or by another tool: kept as they are.
		{manifest.Entry{Path: "blobs/elsewhere.parquet", Hash: hash, HashMethod: "full"}, false},
		{manifest.Entry{Path: "blobs/00/ff/00ff0651a67c686bd8b53bd622480d9a.parquet", Hash: "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", HashMethod: "full"}, false},
		{manifest.Entry{Path: "blobs/00/ff/00ff0651a67c686bd8b53bd622480d9a.parquet", Hash: hash, HashMethod: "md5"}, false},
		{manifest.Entry{Path: "", Hash: "", HashMethod: ""}, false},
		{manifest.Entry{Path: "blobs/b5/8e/b58e0651a67c686bd8b53bd622480d9a.parquet", Hash: "not hex at all, but 64 characters long: 0123456789abcdef01234567", HashMethod: "full"}, false},
	} {
		e := c.e
		e.ID, e.LogicalSize, e.FileSize, e.Rows = 7, 1000, 400, 12
		v := newVersion(&e)
		if v.path() != e.Path || v.hashHex() != e.Hash || v.hashMethod() != e.HashMethod {
			t.Errorf("newVersion(%+v) gives path %q, hash %q, method %q", e, v.path(), v.hashHex(), v.hashMethod())
		}
		if v.id != e.ID || v.size != e.LogicalSize || v.stored != e.FileSize || v.rows != e.Rows {
			t.Errorf("newVersion(%+v) = %+v", e, v)
		}
		if packed := v.odd == nil; packed != c.packed {
			t.Errorf("newVersion(%+v): packed = %v, want %v", e, packed, c.packed)
		}
	}
}
