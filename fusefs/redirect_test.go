package fusefs

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable wall clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestRedirectTable(t *testing.T) {
	const tid, other = 7, 8
	type step struct {
		advance time.Duration // before the call, in one jump
		busy    time.Duration // before the call, in 100 ms steps of traffic from another thread
		op      string        // "open" (a writer's open), "lookup", "done"
		tid     uint32
		want    bool // open: answer ESTALE; lookup: redirected
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"open, retry's lookup, open of the private inode", []step{
			{op: "open", tid: tid, want: true},
			{op: "lookup", tid: tid, want: true},
			{op: "lookup", tid: tid, want: true}, // revalidation, then the lookup proper
			{op: "done", tid: tid},
			{op: "lookup", tid: tid, want: false},
		}},
		{"a mark redirects only its own thread", []step{
			{op: "open", tid: tid, want: true},
			{op: "lookup", tid: other, want: false},
			{op: "lookup", tid: tid, want: true},
		}},
		{"a retry that came back without a lookup keeps the shared inode", []step{
			{op: "open", tid: tid, want: true},
			{op: "open", tid: tid, want: false},
			{op: "lookup", tid: tid, want: false},
		}},
		{"an answered mark whose open never came is redirected afresh", []step{
			{op: "open", tid: tid, want: true},
			{op: "lookup", tid: tid, want: true},
			{op: "open", tid: tid, want: true},
		}},
		{"a retry delayed by a loaded machine still finds its mark", []step{
			{op: "open", tid: tid, want: true},
			{busy: 20 * time.Second, op: "lookup", tid: tid, want: true},
		}},
		{"a mark nobody answers expires while the daemon runs", []step{
			{op: "open", tid: tid, want: true},
			{busy: redirectTTL + time.Second, op: "lookup", tid: tid, want: false},
		}},
		{"a daemon stopped for a minute between the ESTALE and the retry", []step{
			{op: "open", tid: tid, want: true},
			{advance: time.Minute, op: "lookup", tid: tid, want: true},
			{op: "done", tid: tid},
		}},
		{"a daemon stopped between the retry's lookup and its open", []step{
			{op: "open", tid: tid, want: true},
			{op: "lookup", tid: tid, want: true},
			{advance: time.Hour, op: "lookup", tid: tid, want: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			tab := redirectTable{now: clk.now}
			for i, s := range tt.steps {
				clk.advance(s.advance)
				for d := time.Duration(0); d < s.busy; d += 100 * time.Millisecond {
					clk.advance(100 * time.Millisecond)
					tab.lookedUp(999) // another thread's lookup: traffic
				}
				var got bool
				switch s.op {
				case "open":
					got = tab.mark(s.tid)
				case "lookup":
					got = tab.lookedUp(s.tid)
				case "done":
					tab.done(s.tid)
					continue
				}
				if got != s.want {
					t.Fatalf("step %d (%s by %d): got %v, want %v", i, s.op, s.tid, got, s.want)
				}
			}
		})
	}
}

// Writers on many threads at once each get their own redirect.
func TestRedirectTableConcurrentThreads(t *testing.T) {
	tab := redirectTable{now: time.Now}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for tid := range uint32(64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if !tab.mark(tid) || !tab.lookedUp(tid) {
					errs <- "redirect lost"
					return
				}
				tab.done(tid)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
