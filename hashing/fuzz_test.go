package hashing

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// FuzzInspect feeds arbitrary bytes to Inspect and the hashes. The seeds are
// the DuckDB fixtures plus testdata/fuzz/FuzzInspect, where
// `go test -fuzz FuzzInspect` also leaves any input that fails.
func FuzzInspect(f *testing.F) {
	for _, name := range fixtureNames(f) {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(checkInspect)
}

// FuzzInspectFooter mutates only the footer and frames it with valid magics
// and length, which random mutation of whole files seldom gets past, to
// drive the thrift check, the decoder, the shape check and parquet-go.
func FuzzInspectFooter(f *testing.F) {
	for _, name := range fixtureNames(f) {
		b := readFixture(f, name)
		f.Add(b[int64(len(b))-8-footerLen(b) : len(b)-8])
	}
	f.Fuzz(func(t *testing.T, footer []byte) {
		checkInspect(t, withFooter(footer))
	})
}

// checkInspect holds for any input: nothing panics; every failure wraps
// exactly one sentinel (a bytes.Reader has no I/O errors); what Inspect
// accepts is consistent and can be footer-hashed; a full hash never fails.
func checkInspect(t *testing.T, b []byte) {
	r := bytes.NewReader(b)
	size := int64(len(b))
	info, err := Inspect(r, size)
	if err != nil {
		n := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %q wraps %d sentinels, want 1", err, n)
		}
	}
	_, footerErr := FooterHash(context.Background(), r, size)
	switch {
	case err == nil && (info.Rows < 0 || info.FooterLength+minSize > size):
		t.Fatalf("Inspect accepted an impossible description %+v of %d bytes", info, size)
	case err == nil && footerErr != nil:
		t.Fatalf("Inspect accepted a file FooterHash refuses: %v", footerErr)
	case footerErr != nil && !errors.Is(footerErr, ErrTruncated):
		t.Fatalf("FooterHash error %q does not wrap ErrTruncated", footerErr)
	}
	if _, err := FullHash(context.Background(), r, size); err != nil {
		t.Fatalf("full hash of bytes in memory failed: %v", err)
	}
}
