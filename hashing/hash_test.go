package hashing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFullHashEqualsSHA256(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			b := readFixture(t, name)
			got, err := FullHash(context.Background(), bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			want := sha256.Sum256(b)
			if got.Method != Full || got.Hex != hex.EncodeToString(want[:]) {
				t.Errorf("FullHash = %+v, want full %x", got, want)
			}
		})
	}
}

// Streaming through the buffer must not change the sum: sizes around the
// chunk size, and one of several chunks.
func TestFullHashAcrossChunks(t *testing.T) {
	data := make([]byte, 3*chunkSize+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, len(data)} {
		got, err := FullHash(context.Background(), bytes.NewReader(data), int64(n))
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256(data[:n]); got.Hex != hex.EncodeToString(want[:]) {
			t.Errorf("FullHash of %d bytes = %s, want %x", n, got.Hex, want)
		}
	}
}

func TestFullHashEqualsSha256sum(t *testing.T) {
	tool, err := exec.LookPath("sha256sum")
	if err != nil {
		t.Skip("sha256sum not installed")
	}
	path := filepath.Join("testdata", "ts_zstd.parquet")
	out, err := exec.Command(tool, path).Output()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	got, err := FullHash(context.Background(), f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if want, _, _ := strings.Cut(string(out), " "); got.Hex != want {
		t.Errorf("FullHash = %s, sha256sum says %s", got.Hex, want)
	}
}

func TestFullHashStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := make([]byte, 2*chunkSize)
	r := &countingReader{r: bytes.NewReader(data)}
	_, err := FullHash(ctx, r, int64(len(data)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(r.reads) > 0 {
		t.Errorf("read %d bytes after cancellation", r.bytesRead())
	}
}

// referenceFooterHash is the footer hash written straight from its
// definition: SHA-256 of the size (8 bytes, little endian) and the last
// 8+footerLength bytes.
func referenceFooterHash(b []byte) string {
	size := binary.LittleEndian.AppendUint64(nil, uint64(len(b)))
	sum := sha256.Sum256(append(size, b[int64(len(b))-8-footerLen(b):]...))
	return hex.EncodeToString(sum[:])
}

func TestFooterHashMatchesDefinition(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			b := readFixture(t, name)
			got, err := FooterHash(context.Background(), bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if want := referenceFooterHash(b); got.Method != Footer || got.Hex != want {
				t.Errorf("FooterHash = %+v, want footer %s", got, want)
			}
		})
	}
}

func TestFooterHashCoversFooterNotBody(t *testing.T) {
	b := readFixture(t, "ts_snappy.parquet")
	size := int64(len(b))
	footerStart := size - 8 - footerLen(b)
	hash := func(b []byte) string {
		t.Helper()
		s, err := FooterHash(context.Background(), bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		return s.Hex
	}
	flip := func(at int64) []byte {
		c := bytes.Clone(b)
		c[at] ^= 0xff
		return c
	}
	orig := hash(b)
	if got := hash(flip(footerStart / 2)); got != orig {
		t.Errorf("a changed byte in the middle changed the footer hash")
	}
	for _, at := range []int64{footerStart, footerStart + footerLen(b)/2, size - 9} {
		if got := hash(flip(at)); got == orig {
			t.Errorf("a changed byte in the footer at %d left the footer hash unchanged", at)
		}
	}
	// The size is hashed too: the same tail after a longer body differs.
	longer := append(append(bytes.Clone(b[:footerStart]), make([]byte, 10)...), b[footerStart:]...)
	if hash(longer) == orig {
		t.Errorf("a longer file with the same footer has the same footer hash")
	}
}

func TestFooterHashReadsOnlyTheTail(t *testing.T) {
	fixture := readFixture(t, "ts_snappy.parquet")
	flen := footerLen(fixture)
	const size = 1 << 30
	r := &countingReader{r: sparseParquet(t, fixture, size)}
	got, err := FooterHash(context.Background(), r, size)
	if err != nil {
		t.Fatal(err)
	}
	if bad := r.outside(span{size - 8 - flen, 8 + flen}); len(bad) > 0 {
		t.Errorf("read outside the tail: %v", bad)
	}
	if n := r.bytesRead(); n != 8+flen {
		t.Errorf("read %d bytes, want %d (footer, length, magic once)", n, 8+flen)
	}
	tail := fixture[int64(len(fixture))-8-flen:]
	want := sha256.Sum256(append(binary.LittleEndian.AppendUint64(nil, size), tail...))
	if got.Hex != hex.EncodeToString(want[:]) {
		t.Errorf("FooterHash = %s, want %x", got.Hex, want)
	}
}

func TestFooterHashRejectsBadTails(t *testing.T) {
	good := readFixture(t, "ts_snappy.parquet")
	tests := []struct {
		name string
		file []byte
	}{
		{"empty", nil},
		{"short", []byte("PAR1PAR1")},
		{"no trailing magic", good[:len(good)-1]},
		{"footer length past the start", append(bytes.Clone(good[:len(good)-8]), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FooterHash(context.Background(), bytes.NewReader(tt.file), int64(len(tt.file)))
			checkSentinel(t, err, ErrTruncated)
		})
	}
}

func TestHashChoosesMethodBySize(t *testing.T) {
	b := readFixture(t, "ts_snappy.parquet")
	size := int64(len(b))
	full := sha256.Sum256(b)
	tests := []struct {
		threshold int64
		want      Sum
	}{
		{size, Sum{Hex: hex.EncodeToString(full[:]), Method: Full}},
		{size + 1, Sum{Hex: hex.EncodeToString(full[:]), Method: Full}},
		{size - 1, Sum{Hex: referenceFooterHash(b), Method: Footer}},
		{0, Sum{Hex: referenceFooterHash(b), Method: Footer}},
	}
	for _, tt := range tests {
		got, err := Hash(context.Background(), bytes.NewReader(b), size, tt.threshold)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("Hash(size %d, threshold %d) = %+v, want %+v", size, tt.threshold, got, tt.want)
		}
	}
}
