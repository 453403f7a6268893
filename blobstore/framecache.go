package blobstore

import (
	"sync"

	"golang.org/x/sync/semaphore"
)

// frameCache holds the decoded frames of one reader and makes concurrent
// readers of the same frame share a single decode. Frames that have been
// read are kept in a small LRU; frames decoded ahead and not read yet are
// kept apart, so a reader's recent reads never evict the window it is about
// to read. Frames decoded ahead hold their size from the store's read-ahead
// budget until they are read or dropped, which caps speculative memory
// across all readers.
//
// Frame buffers are recycled, which spares a sequential reader a fresh
// zeroed allocation per frame and the garbage collections that follow. A
// buffer is recycled only when its reference count drops to zero: the cache
// holds one reference while the frame is kept or being decoded, and every
// read holds one from finding the frame until release, so a buffer still
// being copied from is never reused.
type frameCache struct {
	mu       sync.Mutex
	max      int      // read frames kept
	recent   []*frame // read frames, least recently used first
	ahead    map[int64]*frame
	aheadMax int // frames decoded ahead, ready or in flight
	pending  int // frames claimed ahead and in flight
	inflight map[int64]*frame
	budget   *semaphore.Weighted
	bufs     *framePool
}

type frame struct {
	id     int64
	data   []byte
	err    error
	ready  chan struct{} // closed when data or err is set
	refs   int           // guarded by frameCache.mu
	charge int64         // bytes held from the read-ahead budget
	early  bool          // claimed by read-ahead
	wanted bool          // a read waits for it: it goes to recent, not ahead
}

func (c *frameCache) init(max, aheadMax int, budget *semaphore.Weighted, bufs *framePool) {
	c.max = max
	c.aheadMax = aheadMax
	c.budget = budget
	c.bufs = bufs
	c.ahead = make(map[int64]*frame)
	c.inflight = make(map[int64]*frame)
}

// findLocked returns frame id, with a reference for the caller, if it is
// decoded or being decoded, nil otherwise.
func (c *frameCache) findLocked(id int64) *frame {
	var found *frame
	for i, f := range c.recent {
		if f.id == id {
			copy(c.recent[i:], c.recent[i+1:])
			c.recent[len(c.recent)-1] = f
			found = f
			break
		}
	}
	if f, ok := c.ahead[id]; ok && found == nil {
		delete(c.ahead, id)
		c.keepLocked(f)
		found = f
	}
	if f, ok := c.inflight[id]; ok && found == nil {
		f.wanted = true
		found = f
	}
	if found != nil {
		found.refs++
	}
	return found
}

// keepLocked adds a read frame, with the cache's reference, to the LRU,
// releasing its read-ahead charge: it is no longer speculative.
func (c *frameCache) keepLocked(f *frame) {
	c.uncharge(f)
	if len(c.recent) == c.max {
		c.unrefLocked(c.recent[0])
		copy(c.recent, c.recent[1:])
		c.recent = c.recent[:c.max-1]
	}
	c.recent = append(c.recent, f)
}

func (c *frameCache) present(id int64) bool {
	if _, ok := c.ahead[id]; ok {
		return true
	}
	if _, ok := c.inflight[id]; ok {
		return true
	}
	for _, f := range c.recent {
		if f.id == id {
			return true
		}
	}
	return false
}

// peek returns frame id once decoded if it is cached or being decoded, and
// nil if nobody has it, so a caller can decode it elsewhere. A frame returned
// must be released.
func (c *frameCache) peek(id int64) (*frame, error) {
	c.mu.Lock()
	f := c.findLocked(id)
	c.mu.Unlock()
	if f == nil {
		return nil, nil
	}
	<-f.ready
	if f.err != nil {
		c.release(f)
		return nil, f.err
	}
	return f, nil
}

// get returns frame id, decoding it with load unless it is cached or being
// decoded by another reader. A frame returned must be released.
func (c *frameCache) get(id int64, load func() ([]byte, error)) (*frame, error) {
	c.mu.Lock()
	f := c.findLocked(id)
	if f == nil {
		// One reference for the cache, one for the caller.
		f = &frame{id: id, ready: make(chan struct{}), wanted: true, refs: 2}
		c.inflight[id] = f
		c.mu.Unlock()
		data, err := load()
		c.complete(f, data, err)
	} else {
		c.mu.Unlock()
		<-f.ready
	}
	if f.err != nil {
		c.release(f)
		return nil, f.err
	}
	return f, nil
}

// release gives back a reference from get or peek; the caller must not touch
// the frame's data afterwards.
func (c *frameCache) release(f *frame) {
	c.mu.Lock()
	c.unrefLocked(f)
	c.mu.Unlock()
}

func (c *frameCache) unrefLocked(f *frame) {
	f.refs--
	if f.refs == 0 && f.data != nil {
		c.bufs.put(f.data)
		f.data = nil
	}
}

// claimAhead registers frames from..to-1 as being decoded, for a read-ahead
// that will complete them; frames reading..from-1 are the ones the current
// read spans. It starts at the first frame nobody has, and claims nothing
// while more than keep frames from `from` on are present: refilling half a
// window at a time lets one pread fetch several frames. It stops at a frame
// already present, when the reader's window is full or when the store's
// budget runs out.
func (c *frameCache) claimAhead(reading, from, to int64, keep int, size func(id int64) int64) []*frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := from
	for id < to && c.present(id) {
		id++
	}
	if id-from > int64(keep) || id == to {
		return nil
	}
	// Frames decoded ahead outside this window were skipped or belong to a
	// stream that moved on: make room by dropping them.
	if len(c.ahead)+c.pending+int(to-id) > c.aheadMax {
		for fid, f := range c.ahead {
			if fid < reading || fid >= to {
				delete(c.ahead, fid)
				c.uncharge(f)
				c.unrefLocked(f)
			}
		}
	}
	var claimed []*frame
	for ; id < to && !c.present(id) && len(c.ahead)+c.pending < c.aheadMax; id++ {
		n := size(id)
		if !c.budget.TryAcquire(n) {
			break
		}
		f := &frame{id: id, ready: make(chan struct{}), refs: 1, charge: n, early: true}
		c.inflight[id] = f
		c.pending++
		claimed = append(claimed, f)
	}
	return claimed
}

// complete publishes the outcome of decoding f and wakes its waiters. A
// failed frame is not kept: the next read decodes it again and meets the
// error itself.
func (c *frameCache) complete(f *frame, data []byte, err error) {
	c.mu.Lock()
	f.data, f.err = data, err
	delete(c.inflight, f.id)
	if f.early {
		c.pending--
	}
	switch {
	case f.err != nil:
		c.uncharge(f)
		c.unrefLocked(f)
	case f.wanted:
		c.keepLocked(f)
	default:
		c.ahead[f.id] = f
	}
	c.mu.Unlock()
	close(f.ready)
}

// uncharge returns a frame's charge to the budget.
func (c *frameCache) uncharge(f *frame) {
	if f.charge > 0 {
		c.budget.Release(f.charge)
		f.charge = 0
	}
}

// clear drops every decoded frame; frames in flight must have completed.
func (c *frameCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, f := range c.ahead {
		delete(c.ahead, id)
		c.uncharge(f)
		c.unrefLocked(f)
	}
	for _, f := range c.recent {
		c.unrefLocked(f)
	}
	c.recent = nil
}

// framePool recycles decoded-frame buffers across the readers of a store.
type framePool struct{ pool sync.Pool }

// get returns a buffer of n bytes with decodeSlack spare capacity.
func (p *framePool) get(n uint32) []byte {
	if b, ok := p.pool.Get().(*[]byte); ok && cap(*b) >= int(n)+decodeSlack {
		return (*b)[:n]
	}
	return make([]byte, n, int(n)+decodeSlack)
}

func (p *framePool) put(b []byte) { p.pool.Put(&b) }
