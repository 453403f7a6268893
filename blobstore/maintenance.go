package blobstore

// RemoveUnlocked removes path unless a live process holds its lock (a write or
// a commit in flight). It reports whether the file was removed. A file that is
// already gone is not an error.
func (s *Store) RemoveUnlocked(path string) (bool, error) {
	return s.RemoveUnlockedIf(path, nil)
}
