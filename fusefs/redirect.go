package fusefs

import (
	"sync"
	"time"
)

// redirectTable holds the writers sent back (with ESTALE) to look their
// name up again, so that the lookup gives them an inode of their own.
//
// Why: a writer opening a committed version's inode would share it with the
// version's readers, and the kernel then applies the writer's truncation and
// growth to the size those readers see (a cached reader reads zeros or stops
// short), and refuses the open outright while passthrough readers hold the
// inode. ESTALE makes the kernel look the name up again, once; that lookup
// finds the thread's mark and gives the writer a private inode.
//
// Marks are keyed by thread alone, not by name: the open that sets one may
// reach a node whose name has changed since (a rename, a node the tree has
// already dropped), and the retry's lookup must find the mark whatever name
// it resolves. One syscall looks up one entry name, so a mark cannot meet a
// lookup of another.
type redirectTable struct {
	now func() time.Time

	mu    sync.Mutex
	marks map[uint32]redirectMark
	clock activeClock
}

// redirectMark is a thread's pending redirect: when it was made (on the
// table's active clock), and whether a lookup has answered it since.
type redirectMark struct {
	at     time.Duration
	looked bool
}

// redirectTTL is how long an unanswered mark is kept, in time the daemon
// was running (see activeClock). The kernel retries at once, but a loaded
// machine can delay the retry's lookup by seconds, and a mark that expired
// before it would fail the writer with ESTALE; a mark left over from an
// open that never came back only misdirects its own thread, which mark and
// a reader's open both correct.
const redirectTTL = 30 * time.Second

// mark marks the calling thread's next entry lookup as a writer's and
// reports whether the caller should answer ESTALE. It reports false when
// an unanswered mark was already there: the kernel's one retry did not come
// through a lookup, and the caller must make do with the shared inode.
func (t *redirectTable) mark(tid uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.read(t.now())
	if t.marks == nil {
		t.marks = make(map[uint32]redirectMark)
	}
	for id, m := range t.marks {
		if now-m.at > redirectTTL {
			delete(t.marks, id)
		}
	}
	if m, pending := t.marks[tid]; pending && !m.looked {
		delete(t.marks, tid)
		return false
	}
	// No mark, or one a lookup answered whose open never came (that
	// syscall failed on its way): this is a new open, redirect it.
	t.marks[tid] = redirectMark{at: now}
	return true
}

// lookedUp reports whether this lookup is a redirected writer's. The mark
// stays until the writer opens its private inode: the kernel may look the
// name up twice on the way (revalidation, then the lookup proper).
func (t *redirectTable) lookedUp(tid uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.read(t.now())
	m, ok := t.marks[tid]
	if !ok || now-m.at > redirectTTL {
		return false
	}
	m.looked = true
	t.marks[tid] = m
	return true
}

// done clears a thread's mark: its writer opened its private inode, or a
// reader on that thread was given one (see fileNode.Open).
func (t *redirectTable) done(tid uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.marks, tid)
}

// activeClock measures time the daemon spent running, from the wall times
// of the calls that read it: a gap between two calls counts for at most
// maxGap. A daemon stopped (SIGSTOP, a frozen VM) for longer than a mark
// lives would otherwise find, on waking, every mark made just before the
// stop expired, while the kernel's retries for them are only now arriving;
// an idle daemon loses nothing by counting its idle time short, as no
// lookup is waiting then.
type activeClock struct {
	last   time.Time
	active time.Duration
}

const maxGap = time.Second

func (c *activeClock) read(now time.Time) time.Duration {
	if !c.last.IsZero() {
		c.active += min(max(now.Sub(c.last), 0), maxGap)
	}
	c.last = now
	return c.active
}
