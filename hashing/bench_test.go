package hashing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// A footer hash reads the same tail whatever the file's size: the 1 GiB
// (sparse) file should cost what the 1 MiB one does, microseconds.
func BenchmarkFooterHash(b *testing.B) {
	fixture := readFixture(b, "ts_snappy.parquet")
	for _, bench := range []struct {
		name string
		size int64
	}{
		{"1MiB", 1 << 20},
		{"1GiB", 1 << 30},
	} {
		b.Run(bench.name, func(b *testing.B) {
			f := sparseParquet(b, fixture, bench.size)
			ctx := context.Background()
			for b.Loop() {
				if _, err := FooterHash(ctx, f, bench.size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FullHash of a file in the page cache against crypto/sha256 over the same
// bytes in memory, the ceiling it can reach.
func BenchmarkFullHash(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{}).Read(data)
	path := filepath.Join(b.TempDir(), "64MiB")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()

	b.Run("64MiB-file", func(b *testing.B) {
		b.SetBytes(size)
		ctx := context.Background()
		for b.Loop() {
			if _, err := FullHash(ctx, f, size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("64MiB-sha256-baseline", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			sha256.Sum256(data)
		}
	})
}

func BenchmarkInspect(b *testing.B) {
	fixture := readFixture(b, "ts_snappy.parquet")
	b.Run("fixture", func(b *testing.B) {
		r := bytes.NewReader(fixture)
		for b.Loop() {
			if _, err := Inspect(r, int64(len(fixture))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1GiB-file", func(b *testing.B) {
		const size = 1 << 30
		f := sparseParquet(b, fixture, size)
		for b.Loop() {
			if _, err := Inspect(f, size); err != nil {
				b.Fatal(err)
			}
		}
	})
}
