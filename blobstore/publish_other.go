//go:build !linux || blobstore_osroot

package blobstore

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
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
	// GC's orphan grace counts from publication.
	now := time.Now()
	if err := s.osRoot.Chtimes(st.rel, now, now); err != nil {
		return nil, s.pathErr("utimes", st.rel, err)
	}
	// Data, size and mtime must be on disk before the name that promises a
	// complete blob can be.
	if err := s.fsync(st.f, st.rel); err != nil {
		return nil, err
	}
	if err := s.renameIntoShard(shard, st.rel, rel); err != nil {
		return nil, err
	}
	p := &Published{
		Blob: Blob{Path: rel, StoredSize: size, LogicalSize: size},
		f:    st.f,
	}
	st.f = nil
	return p, nil
}

// renameIntoShard makes shard durable, renames oldrel to newrel in it and
// syncs the shard; on error nothing is left at newrel.
func (s *Store) renameIntoShard(shard, oldrel, newrel string) error {
	for attempt := 0; ; attempt++ {
		if err := s.mkdirDurable(shard); err != nil {
			return err
		}
		err := s.renameNoReplace(oldrel, newrel)
		// Someone removed a shard this process had made durable: make it again.
		if errors.Is(err, fs.ErrNotExist) && attempt == 0 {
			s.durableDirs.Delete(shard)
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: s.abs(oldrel), New: s.abs(newrel), Err: err}
		}
		break
	}
	if err := s.syncDir(shard); err != nil {
		if rerr := s.osRoot.Rename(newrel, oldrel); rerr != nil {
			_ = s.osRoot.Remove(newrel)
		}
		return err
	}
	return nil
}

// publishZstd writes the staged bytes as a seekable zstd blob, taking the
// frames in kept (see trialResult) as they are. st.mu is held.
func (s *Store) publishZstd(ctx context.Context, st *Staged, size int64, kept [][]byte) (*Published, error) {
	p, err := s.writeZstd(ctx, st.f, size, kept)
	if err != nil {
		return nil, err
	}
	// As on Linux: errors ignored, no sync; a leftover is an orphan for GC.
	_ = s.osRoot.Remove(st.rel)
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
	tmpRel := StagingDir + "/" + name + ".zst.tmp"
	defer func() {
		if err != nil {
			// Remove before close: the lock keeps a GC off the name until
			// it is gone.
			_ = s.osRoot.Remove(tmpRel)
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
	// The compressed bytes must be on disk before the name is.
	if err := s.fsync(tmp, tmpRel); err != nil {
		return nil, err
	}
	shard, rel := blobPath(name, true)
	if err := s.renameIntoShard(shard, tmpRel, rel); err != nil {
		return nil, err
	}
	return &Published{
		Blob: Blob{Path: rel, StoredSize: stored, LogicalSize: size, Compressed: true},
		f:    tmp,
	}, nil
}
