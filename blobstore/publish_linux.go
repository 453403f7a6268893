//go:build linux && !blobstore_osroot

package blobstore

import (
	"context"
	"io"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// publishRaw renames the staged file into blobs/. st.mu is held.
func (s *Store) publishRaw(st *Staged, size, staged int64) (*Published, error) {
	if staged != size {
		if err := st.f.Truncate(size); err != nil {
			return nil, err
		}
	}
	name, err := newName()
	if err != nil {
		return nil, err
	}
	shard, rel := blobPath(name, false)
	sfd, base, err := s.openParent(st.rel)
	if err != nil {
		return nil, err
	}
	defer unix.Close(sfd)
	// GC's orphan grace counts from publication, not from when the writer
	// created the file, which may be long ago.
	if err := unix.UtimesNanoAt(sfd, base, nowTimes(), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &os.PathError{Op: "utimes", Path: st.f.Name(), Err: err}
	}
	shardDir := s.openShardAsync(shard)
	defer shardDir.close()
	// Data, size and mtime must be on disk before the name that promises a
	// complete blob can be.
	if err := s.fsync(int(st.f.Fd()), st.rel); err != nil {
		return nil, err
	}
	dfd, err := shardDir.wait()
	if err != nil {
		return nil, err
	}
	blobBase := name + ".parquet"
	if err := renameNoReplace(sfd, base, dfd, blobBase); err != nil {
		return nil, &os.LinkError{Op: "rename", Old: st.f.Name(), New: s.abs(rel), Err: err}
	}
	// Persist the rename; the staging directory needs no fsync: both entries
	// change in one journal transaction, which this fsync commits.
	if err := s.fsync(dfd, shard); err != nil {
		// Put the staged file back so nothing is left under blobs/.
		if rerr := unix.Renameat(dfd, blobBase, sfd, base); rerr != nil {
			_ = unix.Unlinkat(dfd, blobBase, 0)
		}
		return nil, err
	}
	p := &Published{
		Blob: Blob{Path: rel, StoredSize: size, LogicalSize: size},
		f:    st.f,
	}
	st.f = nil
	return p, nil
}

// pendingDir is a shard directory being made durable and opened in the
// background. Its fsyncs (of the parents of any level it creates) owe
// nothing to the blob's own: run side by side they cost one wait, not two.
type pendingDir struct {
	done chan struct{}
	fd   int
	err  error
}

func (s *Store) openShardAsync(shard string) *pendingDir {
	d := &pendingDir{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		d.fd, d.err = s.openShard(shard)
	}()
	return d
}

// wait returns the directory's descriptor, which close closes.
func (d *pendingDir) wait() (int, error) {
	<-d.done
	return d.fd, d.err
}

// close waits for the directory and closes it; every openShardAsync must
// be paired with a close, whatever happened meanwhile.
func (d *pendingDir) close() {
	if fd, err := d.wait(); err == nil {
		unix.Close(fd)
	}
}

// nowTimes sets atime and mtime to the kernel's current time.
func nowTimes() []unix.Timespec {
	return []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
}

// publishZstd writes the staged bytes as a seekable zstd blob, taking the
// frames in kept (see trialResult) as they are. st.mu is held.
func (s *Store) publishZstd(ctx context.Context, st *Staged, size int64, kept [][]byte) (*Published, error) {
	p, err := s.writeZstd(ctx, st.f, size, kept)
	if err != nil {
		return nil, err
	}
	// The staged bytes are no longer needed. Errors are ignored and there is
	// no fsync: the blob is durable, and a staging file left behind (or
	// brought back by a crash) is an unlocked orphan that GC removes.
	if sfd, err := s.openDir(StagingDir); err == nil {
		_ = unix.Unlinkat(sfd, path.Base(st.rel), 0)
		unix.Close(sfd)
	}
	_ = st.f.Close()
	st.f = nil
	return p, nil
}

// writeZstd writes the first size bytes of src as a new seekable zstd blob,
// durable and locked against GC, taking the frames in kept as they are.
func (s *Store) writeZstd(ctx context.Context, src io.ReaderAt, size int64, kept [][]byte) (p *Published, err error) {
	tmp, name, err := s.createLocked(".zst.tmp")
	if err != nil {
		return nil, err
	}
	tmpBase := name + ".zst.tmp"
	tmpRel := StagingDir + "/" + tmpBase
	renamed := false
	sfd, err := s.openDir(StagingDir)
	if err != nil {
		_ = s.unlink(tmpRel)
		tmp.Close()
		return nil, err
	}
	defer unix.Close(sfd)
	defer func() {
		if err != nil && !renamed {
			// Unlink before close: the lock keeps a GC off the name until
			// it is gone.
			_ = unix.Unlinkat(sfd, tmpBase, 0)
			tmp.Close()
		}
	}()

	var stored int64
	if kept != nil {
		stored, err = s.encodeKept(ctx, tmp, src, size, kept)
	} else {
		stored, err = s.encode(ctx, tmp, src, size)
	}
	if err != nil {
		return nil, err
	}
	shard, rel := blobPath(name, true)
	shardDir := s.openShardAsync(shard)
	defer shardDir.close()
	// The compressed bytes must be on disk before the name is.
	if err := s.fsync(int(tmp.Fd()), tmpRel); err != nil {
		return nil, err
	}
	dfd, err := shardDir.wait()
	if err != nil {
		return nil, err
	}
	blobBase := name + ".parquet.zst"
	if err := renameNoReplace(sfd, tmpBase, dfd, blobBase); err != nil {
		return nil, &os.LinkError{Op: "rename", Old: tmp.Name(), New: s.abs(rel), Err: err}
	}
	// Persist the rename before anyone may reference the blob.
	if err := s.fsync(dfd, shard); err != nil {
		if rerr := unix.Renameat(dfd, blobBase, sfd, tmpBase); rerr != nil {
			_ = unix.Unlinkat(dfd, blobBase, 0)
		}
		return nil, err
	}
	renamed = true
	return &Published{
		Blob: Blob{Path: rel, StoredSize: stored, LogicalSize: size, Compressed: true},
		f:    tmp,
	}, nil
}
