package fusefs

import "github.com/hanwen/go-fuse/v2/fuse"

// dataResult is a read reply held in memory. go-fuse writes a reply that
// offers its Slices straight to the device with writev; any other in-memory
// result (fuse.ReadResultData) first goes through its splice path, which
// takes a pipe, resizes it and writes the header into it before finding
// there is no file to splice from: several wasted system calls per read,
// and for a 1 MiB read, which needs a pipe larger than the system allows,
// a log line too.
type dataResult []byte

func (r dataResult) Bytes([]byte) ([]byte, fuse.Status) { return r, fuse.OK }
func (r dataResult) Size() int                          { return len(r) }
func (r dataResult) Done()                              {}

// Slices is the method go-fuse looks for to write the reply directly.
func (r dataResult) Slices() ([][]byte, fuse.Status) { return [][]byte{r}, fuse.OK }

// spliceLimit is the largest read of a raw blob answered by splice: the
// reply (header, data and a page of slack) must fit the pipe go-fuse grows,
// and go-fuse does not grow one past the system's pipe-max-size (1 MiB by
// default). The kernel asks for up to 1 MiB at once
// (MaxReadAhead), so larger reads are copied with one pread instead of
// failing the splice first.
const spliceLimit = 1<<20 - 2*4096
