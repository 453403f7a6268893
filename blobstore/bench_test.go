package blobstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"golang.org/x/sync/errgroup"
)

// BenchmarkPublish measures a commit's store step on 64 MiB: raw is a
// rename, zstd compresses every frame; "fsync" includes making it durable
// (for raw that is flushing the writer's 64 MiB), "nosync" is the CPU side.
func BenchmarkPublish(b *testing.B) {
	const size = 64 << 20
	for _, k := range []kind{compressible, random} {
		data := gen(k, 1, 0, size)
		for _, policy := range []Compression{None, Zstd, Auto} {
			for _, nosync := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/%s/%s", policy, k, map[bool]string{false: "fsync", true: "nosync"}[nosync]), func(b *testing.B) {
					benchPublish(b, Options{Compression: policy, NoSync: nosync}, data)
				})
			}
		}
	}
}

func benchPublish(b *testing.B, opts Options, data []byte) {
	size := int64(len(data))
	s := newStore(b, opts)
	b.SetBytes(size)
	var stored int64
	for b.Loop() {
		b.StopTimer()
		st := stage(b, s, data)
		b.StartTimer()
		p, err := s.Publish(context.Background(), st, size)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		stored = p.Blob.StoredSize
		p.Release()
		st.Close()
		s.Remove(p.Blob.Path)
		b.StartTimer()
	}
	b.ReportMetric(float64(size)/float64(stored), "ratio")
}

// BenchmarkReadAt64K measures a parquet reader's column-chunk jump: one
// 64 KiB read at a random offset of a 256 MiB blob.
func BenchmarkReadAt64K(b *testing.B) {
	const size = 256 << 20
	for _, policy := range []Compression{None, Zstd} {
		b.Run(string(policy), func(b *testing.B) {
			s := newStore(b, Options{Compression: policy, NoSync: true})
			st := stageGen(b, s, compressible, 1, size)
			p, err := s.Publish(context.Background(), st, size)
			if err != nil {
				b.Fatal(err)
			}
			p.Release()
			st.Close()
			r := openBlob(b, s, p.Blob.Path)
			buf := make([]byte, 64<<10)
			rng := rand.New(rand.NewPCG(1, 1))
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.ReadAt(buf, rng.Int64N(size-int64(len(buf)))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSequentialRead reads a 64 MiB blob front to back in the chunk
// sizes FUSE uses (128 KiB by default, 1 MiB with a raised max_read).
func BenchmarkSequentialRead(b *testing.B) {
	const size = 64 << 20
	for _, policy := range []Compression{None, Zstd} {
		s := newStore(b, Options{Compression: policy, NoSync: true})
		st := stageGen(b, s, compressible, 1, size)
		p, err := s.Publish(context.Background(), st, size)
		if err != nil {
			b.Fatal(err)
		}
		p.Release()
		st.Close()
		for _, chunk := range []int{128 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%dK", policy, chunk>>10), func(b *testing.B) {
				r := openBlob(b, s, p.Blob.Path)
				buf := make([]byte, chunk)
				b.SetBytes(size)
				for b.Loop() {
					for off := int64(0); off < size; off += int64(chunk) {
						if _, err := r.ReadAt(buf, off); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkCodecCeiling is the baseline for the two above: the same 64 MiB of
// compressible data encoded in parallel and decoded frame by frame, in
// memory, with the store's codecs. Publish and SequentialRead approach these
// figures as far as files and checksums allow.
func BenchmarkCodecCeiling(b *testing.B) {
	const size = 64 << 20
	s := newStore(b, Options{})
	data := gen(compressible, 1, 0, size)
	var frames [][]byte
	for off := 0; off < size; off += s.opts.FrameSize {
		frames = append(frames, s.enc.EncodeAll(data[off:off+s.opts.FrameSize], nil))
	}
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			g := errgroup.Group{}
			g.SetLimit(runtime.GOMAXPROCS(0))
			for off := 0; off < size; off += s.opts.FrameSize {
				g.Go(func() error {
					s.enc.EncodeAll(data[off:off+s.opts.FrameSize], nil)
					return nil
				})
			}
			g.Wait()
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(size)
		buf := make([]byte, 0, s.opts.FrameSize)
		for b.Loop() {
			for _, f := range frames {
				if _, err := s.dec.DecodeAll(f, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
