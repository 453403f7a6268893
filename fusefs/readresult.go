package fusefs

import (
	"os"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hanwen/go-fuse/v2/splice"
)

// dataResult is a read reply held in memory. go-fuse writes a vector reply
// straight to the device with writev; fuse.ReadResultData instead first goes
// through its splice path, which takes a pipe, resizes it and writes the
// header into it before finding there is no file to splice from: several
// wasted system calls per read, and for a 1 MiB read, which needs a pipe
// larger than the system allows, a log line too.
func dataResult(b []byte) fuse.ReadResult { return fuse.ReadResultVector([][]byte{b}) }

// replySlack is what go-fuse adds to a read's data when it sizes the pipe
// for a splice: the reply header and a page, so the pipe never fills.
var replySlack = 16 + os.Getpagesize()

// canSplice reports whether a read of n bytes from a raw blob can be
// answered by splice: go-fuse does not grow a pipe past the system's
// pipe-max-size (1 MiB by default), and the kernel asks for up to 1 MiB at
// once (MaxReadAhead). Larger reads are copied with one pread instead of
// failing the splice first.
func canSplice(n int) bool { return n+replySlack <= splice.MaxPipeSize() }
