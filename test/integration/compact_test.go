package integration

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// TestColdEntryIsCompressedAndStaysReadable commits a compressible entry
// with the default auto compression: it is stored raw at commit (close
// costs a rename, reads go through passthrough), then, once it has not been
// opened for --compress-after, rewritten compressed in the background. Its
// bytes, mtime and hash stay the same; a reader that had it open across the
// change reads the old blob whole; DuckDB reads the compressed entry.
func TestColdEntryIsCompressedAndStaysReadable(t *testing.T) {
	m := mountT(t, "--compress-after", "2s")
	sh(t, "mkdir", m.path("CMP"))
	data := compressibleParquet(t, 60_000)
	path := m.path("CMP", "k.parquet")
	commitFile(t, path, data)
	if stored := xattrInt(t, path, "stored_bytes"); stored != int64(len(data)) {
		t.Fatalf("stored_bytes %d at commit, want the raw %d", stored, len(data))
	}
	before := sh(t, "stat", "-c", "%Y %s", path)
	hash := sh(t, "getfattr", "--only-values", "-n", "user.featurefs.hash", path)

	f, err := os.Open(path) // held open across the compaction
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// An open refreshes the access time: the entry is cold 2 s after it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := controlFileJSON(t, m, "stats")
		if jsonNum(t, st, "stored_bytes") < int64(len(data)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry still stored raw 30 s after it turned cold: %v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Past the raw blob's retire delay: it is gone from the cache root, and
	// the reader still holds it.
	time.Sleep(6 * time.Second)
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the reader open across the compaction read other bytes (%v)", err)
	}
	wantBytes(t, path, data)
	if after := sh(t, "stat", "-c", "%Y %s", path); after != before {
		t.Errorf("stat after compaction %q, before %q", after, before)
	}
	if h := sh(t, "getfattr", "--only-values", "-n", "user.featurefs.hash", path); h != hash {
		t.Errorf("hash after compaction %q, before %q", h, hash)
	}
	if stored := xattrInt(t, path, "stored_bytes"); stored >= int64(len(data)) {
		t.Errorf("stored_bytes %d after compaction of %d bytes", stored, len(data))
	}
	if rows := duck(t, "SELECT count(*) AS c FROM read_parquet('"+path+"')"); num(t, rows[0], "c") != 60_000 {
		t.Errorf("DuckDB counts %v rows in the compressed entry, want 60000", rows)
	}
	if out, code := runFsmount(t, "verify", "--deep", "--cache-root", m.root, "--orphan-grace", "1m"); code != 0 {
		t.Errorf("verify --deep after compaction exited %d:\n%s", code, out)
	}
}
