package blobstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

const raFrame = 64 << 10

// raBlob publishes n bytes of compressible data in raFrame frames and
// returns the store, the data and the blob's path.
func raBlob(t *testing.T, n int64) (*Store, []byte, string) {
	t.Helper()
	s := newStore(t, Options{Compression: Zstd, FrameSize: raFrame, NoSync: true})
	data := gen(compressible, n, 0, n)
	return s, data, publish(t, s, data).Path
}

// readSeq reads r front to back in chunk-sized reads and compares each with
// data; it returns the first error other than the final io.EOF.
func readSeq(r Reader, data []byte, chunk int) error {
	buf := make([]byte, chunk)
	for off := 0; off < len(data); off += chunk {
		n, err := r.ReadAt(buf, int64(off))
		want := data[off:min(off+chunk, len(data))]
		if n != len(want) || (err != nil && off+chunk <= len(data)) {
			return fmt.Errorf("ReadAt(%d, %d) = %d, %w", chunk, off, n, err)
		}
		if !bytes.Equal(buf[:n], want) {
			return fmt.Errorf("ReadAt(%d, %d): wrong bytes", chunk, off)
		}
	}
	return nil
}

// budgetIdle reports whether every reader has returned its read-ahead
// budget.
func budgetIdle(s *Store) bool {
	if !s.readAhead.TryAcquire(readAheadBudget) {
		return false
	}
	s.readAhead.Release(readAheadBudget)
	return true
}

func TestSequentialReadAcrossFrameBoundaries(t *testing.T) {
	const size = 8<<20 + 12345
	s, data, path := raBlob(t, size)
	for _, chunk := range []int{4096, raFrame - 1, raFrame, 100_003, 128 << 10, 1 << 20, 3 << 20} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			r := openBlob(t, s, path).(*zstdReader)
			if err := readSeq(r, data, chunk); err != nil {
				t.Fatal(err)
			}
			// Read-ahead and the reads share decodes: every frame is
			// decoded exactly once.
			r.bg.Wait()
			if got, want := r.decoded.Load(), r.table.NumFrames(); got != want {
				t.Fatalf("decoded %d frames, the blob has %d", got, want)
			}
		})
	}
	if !budgetIdle(s) {
		t.Fatal("read-ahead budget not returned after Close")
	}
}

func TestSequentialReaderDecodesAhead(t *testing.T) {
	s, data, path := raBlob(t, 4<<20)
	r := openBlob(t, s, path).(*zstdReader)
	buf := make([]byte, 4096)
	for off := int64(0); off < 3*4096; off += 4096 {
		if _, err := r.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	r.bg.Wait()
	// Only frame 0 was read; the rest of the window came from read-ahead.
	if got := r.decoded.Load(); got < int64(r.ahead) {
		t.Fatalf("decoded %d frames after three sequential 4 KiB reads, want the %d-frame window", got, r.ahead)
	}
	if _, err := r.ReadAt(buf, 5*raFrame); err != nil || !bytes.Equal(buf, data[5*raFrame:5*raFrame+4096]) {
		t.Fatalf("read inside the window: %v or wrong bytes", err)
	}
}

func TestRandomReadsDoNotDecodeAhead(t *testing.T) {
	s, data, path := raBlob(t, 4<<20)
	r := openBlob(t, s, path).(*zstdReader)
	buf := make([]byte, 4096)
	for i, off := range []int64{0, 3 * raFrame, 8192 + 10*raFrame, 40 * raFrame, 4096 + 20*raFrame, 7 * raFrame} {
		if _, err := r.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+4096]) {
			t.Fatalf("ReadAt(%d): %v or wrong bytes", off, err)
		}
		r.bg.Wait()
		if got := r.decoded.Load(); got != int64(i+1) {
			t.Fatalf("after %d random reads %d frames were decoded", i+1, got)
		}
	}
}

func TestConcurrentSequentialReaders(t *testing.T) {
	const size = 6<<20 + 999
	s, data, path := raBlob(t, size)
	shared := openBlob(t, s, path)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			r := shared
			if g%2 == 1 {
				own, err := s.OpenBlob(path)
				if err != nil {
					t.Error(err)
					return
				}
				defer own.Close()
				r = own
			}
			if err := readSeq(r, data, []int{4096, 128 << 10, 77_777}[g%3]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestCloseWhileDecodingAhead(t *testing.T) {
	s, _, path := raBlob(t, 16<<20)
	before := runtime.NumGoroutine()
	for range 20 {
		r, err := s.OpenBlob(path)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Go(func() {
				buf := make([]byte, 32<<10)
				for off := int64(g) * 8 << 20; ; off += int64(len(buf)) {
					_, err := r.ReadAt(buf, off%(16<<20))
					if errors.Is(err, os.ErrClosed) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		time.Sleep(time.Millisecond)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
	if !budgetIdle(s) {
		t.Fatal("read-ahead budget not returned after Close")
	}
	// Close waits for read-ahead: nothing it started is left running.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after closing, %d before", n, before)
	}
}

func TestCorruptFrameFailsTheReadThatNeedsIt(t *testing.T) {
	const bad = 6
	s, data, path := raBlob(t, 2<<20)
	r := openBlob(t, s, path).(*zstdReader)
	e, _ := r.table.EntryByID(bad)
	r.Close()
	f, err := os.OpenFile(s.abs(path), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := int64(e.CompressedOffset) + int64(e.CompressedSize)/2
	one := []byte{0}
	f.ReadAt(one, at)
	one[0] ^= 0x40
	if _, err := f.WriteAt(one, at); err != nil {
		t.Fatal(err)
	}
	f.Close()

	for _, chunk := range []int{4096, 48 << 10, raFrame, 128 << 10} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			r := openBlob(t, s, path).(*zstdReader)
			buf := make([]byte, chunk)
			failed := false
			for off := 0; off < len(data); off += chunk {
				n, err := r.ReadAt(buf, int64(off))
				spans := off < (bad+1)*raFrame && off+chunk > bad*raFrame
				if spans {
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("ReadAt(%d, %d) over the damaged frame: err = %v, want ErrCorrupt", chunk, off, err)
					}
					failed = true
					// Whatever was returned before the damage is right.
					if !bytes.Equal(buf[:n], data[off:off+n]) {
						t.Fatalf("ReadAt(%d, %d): wrong bytes before the damaged frame", chunk, off)
					}
					continue
				}
				atEOF := err == io.EOF && off+chunk > len(data)
				if (err != nil && !atEOF) || !bytes.Equal(buf[:n], data[off:off+n]) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v or wrong bytes", chunk, off, n, err)
				}
			}
			if !failed {
				t.Fatal("no read met the damaged frame")
			}
		})
	}
}

func TestSpentBudgetReadsOnDemand(t *testing.T) {
	s, data, path := raBlob(t, 2<<20)
	if !s.readAhead.TryAcquire(readAheadBudget) {
		t.Fatal("budget taken")
	}
	defer s.readAhead.Release(readAheadBudget)
	r := openBlob(t, s, path).(*zstdReader)
	if err := readSeq(r, data, 4096); err != nil {
		t.Fatal(err)
	}
	if got, want := r.decoded.Load(), r.table.NumFrames(); got != want {
		t.Fatalf("decoded %d frames, the blob has %d", got, want)
	}
}

// TestRecycledFramesNeverLeakIntoReads mixes sequential and random reads of
// one reader from many goroutines, so frames are evicted, dropped and their
// buffers reused while other reads still copy from them.
func TestRecycledFramesNeverLeakIntoReads(t *testing.T) {
	const size = 3<<20 + 4321
	s, data, path := raBlob(t, size)
	r := openBlob(t, s, path)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			buf := make([]byte, 3*raFrame)
			off := rng.Int64N(size)
			for range 300 {
				if rng.IntN(3) == 0 {
					off = rng.Int64N(size)
				}
				n := 1 + rng.IntN(len(buf))
				got, err := r.ReadAt(buf[:n], off)
				if err != nil && err != io.EOF {
					t.Error(err)
					return
				}
				if !bytes.Equal(buf[:got], data[off:off+int64(got)]) {
					t.Errorf("ReadAt(%d, %d): wrong bytes", n, off)
					return
				}
				off = (off + int64(got)) % size
			}
		})
	}
	wg.Wait()
}
