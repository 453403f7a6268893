package blobstore

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	seekable "github.com/SaveTheRbtz/zstd-seekable-format-go/pkg"
)

// Read-ahead: a zstd Reader that is read front to back decodes the frames
// after the current read in the background, so decoding overlaps with the
// caller (the FUSE layer, the kernel copy) and runs on more than one core.
// Random readers never trigger it, so their reads decode only the frames they
// span.
const (
	// readAheadBytes of decoded frames are kept ready ahead of a sequential
	// reader: enough to cover the kernel's read-ahead and keep two cores
	// busy.
	readAheadBytes = 2 << 20
	// readAheadBudget caps the decoded-ahead frames of all readers of a
	// store together; a reader that finds it spent reads on demand.
	readAheadBudget = 16 << 20
)

// seqTracker recognises a sequential reader: one whose read starts where
// one of its last few reads ended. Several ends are kept because the kernel
// sends its read-ahead requests concurrently and they arrive out of order.
type seqTracker struct {
	mu   sync.Mutex
	ends [4]int64
	next int
}

func (t *seqTracker) init() {
	for i := range t.ends {
		t.ends[i] = -1
	}
}

// observe records the read [off, end) and reports whether it continues an
// earlier one.
func (t *seqTracker) observe(off, end int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	seq := slices.Contains(t.ends[:], off)
	t.ends[t.next] = end
	t.next = (t.next + 1) % len(t.ends)
	return seq
}

// aheadFrames is how many frames of this blob make up readAheadBytes.
func aheadFrames(table *seekable.SeekTable) int {
	e, ok := table.EntryByID(0)
	if !ok || e.DecompressedSize == 0 {
		return 0
	}
	return max(2, readAheadBytes/int(e.DecompressedSize))
}

// readAhead starts decoding the frames after a read of frames first..last
// in the background, up to the window, unless they are cached or under way.
// Called with r.mu read-locked, so Close cannot have started and waits for
// what this starts.
func (r *zstdReader) readAhead(first, last int64) {
	to := min(last+1+int64(r.ahead), r.table.NumFrames())
	claimed := r.cache.claimAhead(first, last+1, to, r.ahead/2, func(id int64) int64 {
		e, _ := r.table.EntryByID(id)
		return int64(e.DecompressedSize)
	})
	if len(claimed) > 0 {
		r.bg.Go(func() { r.fill(claimed) })
	}
}

// fill decodes the consecutive frames fs, claimed by readAhead: their
// compressed bytes come in one pread, then one worker per core takes the
// frames in order, so they complete roughly in the order the reader needs
// them. Every frame is completed, with an error if need be, so no reader
// waits for ever.
func (r *zstdReader) fill(fs []*frame) {
	first, _ := r.table.EntryByID(fs[0].id)
	last, _ := r.table.EntryByID(fs[len(fs)-1].id)
	span := int(last.CompressedOffset + uint64(last.CompressedSize) - first.CompressedOffset)
	srcp := r.s.getSrcBuf(span)
	defer r.s.srcBufs.Put(srcp)
	src := (*srcp)[:span]
	readErr := r.stopped()
	if readErr == nil {
		if err := readFull(r.f, src, int64(first.CompressedOffset)); err != nil {
			readErr = fmt.Errorf("blobstore: read %s frames %d-%d: %w", r.f.Name(), first.ID, last.ID, err)
		}
	}
	var next atomic.Int64
	work := func() {
		for i := next.Add(1) - 1; i < int64(len(fs)); i = next.Add(1) - 1 {
			f := fs[i]
			err := readErr
			if err == nil {
				err = r.stopped()
			}
			var data []byte
			if err == nil {
				e, _ := r.table.EntryByID(f.id)
				data = r.s.frameBufs.get(e.DecompressedSize)
				at := e.CompressedOffset - first.CompressedOffset
				err = r.decode(data, src[at:at+uint64(e.CompressedSize)], e)
			}
			// A corrupt frame fails alone: its neighbours still decode.
			r.cache.complete(f, data, err)
		}
	}
	var wg sync.WaitGroup
	for range min(r.s.decoders, len(fs)) - 1 {
		wg.Go(work)
	}
	work()
	// src is recycled when fill returns.
	wg.Wait()
}

// stopped reports os.ErrClosed once Close has begun, so read-ahead stops
// decoding frames nobody will read.
func (r *zstdReader) stopped() error {
	select {
	case <-r.stop:
		return &os.PathError{Op: "read", Path: r.f.Name(), Err: os.ErrClosed}
	default:
		return nil
	}
}
