package hashing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// Whatever part of the file the prefix saw, its hash is the file's.
func TestPrefixHashEqualsFullHash(t *testing.T) {
	data := make([]byte, 3*chunkSize+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	want := sha256.Sum256(data)
	for _, fed := range []int{0, 1, chunkSize, len(data) - 1, len(data)} {
		p := NewPrefix(int64(len(data)))
		// Fed in uneven pieces, as FUSE writes arrive.
		for off := 0; off < fed; {
			n := min(fed-off, 100_003)
			if !p.Append(data[off : off+n]) {
				t.Fatalf("fed %d: Append gave up below its limit", fed)
			}
			off += n
		}
		cr := &countingReader{r: bytes.NewReader(data)}
		got, err := p.Hash(context.Background(), cr, int64(len(data)), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if got.Method != Full || got.Hex != hex.EncodeToString(want[:]) {
			t.Errorf("fed %d: Hash = %+v, want full %x", fed, got, want)
		}
		if read := cr.bytesRead(); read != int64(len(data)-fed) {
			t.Errorf("fed %d: read %d bytes, want the %d not fed", fed, read, len(data)-fed)
		}
		// Asked again about the same file, it reads nothing.
		again, err := p.Hash(context.Background(), cr, int64(len(data)), int64(len(data)))
		if err != nil || again != got {
			t.Errorf("fed %d: second Hash = %+v, %v; want %+v", fed, again, err, got)
		}
		if read := cr.bytesRead(); read != int64(len(data)-fed) {
			t.Errorf("fed %d: second Hash read %d more bytes", fed, read-int64(len(data)-fed))
		}
	}
}

func TestPrefixGivesUpPastItsLimit(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100)
	p := NewPrefix(99)
	if p.Append(data) {
		t.Fatal("Append past the limit did not give up")
	}
	if p.Append(data[:1]) {
		t.Fatal("Append after giving up did not report it")
	}
	// A file within the threshold after all (truncated, say) is hashed in full.
	got, err := p.Hash(context.Background(), bytes.NewReader(data), 50, 99)
	if want := sha256.Sum256(data[:50]); err != nil || got.Hex != hex.EncodeToString(want[:]) {
		t.Errorf("Hash after giving up = %+v, %v; want %x", got, err, want)
	}
}

// Above the threshold the prefix plays no part: the hash is the footer hash.
func TestPrefixHashAboveThresholdIsFooterHash(t *testing.T) {
	b := readFixture(t, "ts_zstd.parquet")
	p := NewPrefix(int64(len(b)))
	p.Append(b)
	threshold := int64(len(b)) - 1
	got, err := p.Hash(context.Background(), bytes.NewReader(b), int64(len(b)), threshold)
	if err != nil {
		t.Fatal(err)
	}
	want, err := FooterHash(context.Background(), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Hash above threshold = %+v, want %+v", got, want)
	}
}
