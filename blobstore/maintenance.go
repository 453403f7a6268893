package blobstore

import "context"

// RemoveUnlocked removes path unless a live process holds its lock (a write or
// a commit in flight). It reports whether the file was removed. A file that is
// already gone is not an error.
func (s *Store) RemoveUnlocked(path string) (bool, error) {
	return s.RemoveUnlockedIf(path, nil)
}

// Walk calls fn for every regular file under blobs/ and staging/. It skips
// anything that is not a regular file or a directory, never following a
// symbolic link (see walkDir for what each platform gives). Files that
// vanish during the walk are skipped; an error from fn stops it.
func (s *Store) Walk(ctx context.Context, fn func(File) error) error {
	for _, d := range []string{BlobsDir, StagingDir} {
		if err := s.walkDir(ctx, d, d == StagingDir, fn); err != nil {
			return err
		}
	}
	return nil
}
