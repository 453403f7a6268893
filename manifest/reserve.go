package manifest

import (
	"os"
	"path/filepath"
)

// ReserveName is the reserve's file name, beside manifest.db. It is not a
// blob: GC's orphan walk never sees it and stats do not count it.
const ReserveName = "manifest.reserve"

// ReserveSize is how much space the reserve holds, given up ReserveStep at
// a time, so that one emergency (a flush of access times on a full disk)
// leaves some for the next (the delete that frees space, the next open).
// Deleting one row logs six pages to the WAL (the row, two index entries,
// the changes log; 24 KiB measured at 100k entries, see
// TestDeleteFitsInAReserveStep) and a first open needs 32 KiB of -shm; GC
// frees each blob right after its row, so a step only has to last until the
// first blob goes. 1 MiB is some 250 pages; 4 MiB is about a full WAL before
// the automatic checkpoint (1000 pages).
const (
	ReserveSize = 4 << 20
	ReserveStep = 1 << 20
)

func (db *DB) reservePath() string { return filepath.Join(filepath.Dir(db.path), ReserveName) }

// releaseReserve gives up ReserveStep of the reserve after cause, a write
// that failed for want of space, and reports whether there was any to give.
func (db *DB) releaseReserve(cause error) bool {
	db.reserveMu.Lock()
	defer db.reserveMu.Unlock()
	db.reserveGone.Store(true)
	path := db.reservePath()
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		return false
	}
	left := max(fi.Size()-ReserveStep, 0)
	// Truncation gives the blocks back at once.
	if err := os.Truncate(path, left); err != nil {
		return false
	}
	db.log.Warn("file system full: released part of the manifest's reserve and retrying",
		"released_bytes", fi.Size()-left, "reserve_left_bytes", left, "err", cause)
	return true
}

// keepReserve brings the reserve back to ReserveSize when it is missing or
// short and the file system has room for that and ReserveSize more, so that
// taking the space back never fills the disk for everyone else. atOpen
// checks the file; otherwise only a reserve known to be short is refilled.
func (db *DB) keepReserve(atOpen bool) {
	if !atOpen && !db.reserveGone.Load() {
		return
	}
	db.reserveMu.Lock()
	defer db.reserveMu.Unlock()
	path := db.reservePath()
	var have int64
	if fi, err := os.Stat(path); err == nil {
		have = fi.Size()
	}
	if have >= ReserveSize {
		db.reserveGone.Store(false)
		return
	}
	db.reserveGone.Store(true)
	if free, ok := freeBytes(filepath.Dir(path)); ok && free < ReserveSize-have+ReserveSize {
		return
	}
	if err := fillReserve(path, have); err != nil {
		_ = os.Truncate(path, have)
		db.log.Debug("manifest reserve not refilled", "err", err)
		return
	}
	db.reserveGone.Store(false)
	db.log.Debug("manifest reserve in place", "path", path, "bytes", ReserveSize)
}

// fillReserve writes zeros from have up to ReserveSize rather than making a
// sparse file: the blocks must really be taken, so that truncating the file
// gives them back.
func fillReserve(path string, have int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for off := have; off < ReserveSize; off += int64(len(buf)) {
		if _, err := f.WriteAt(buf, off); err != nil {
			f.Close()
			return err
		}
	}
	// Synced, so that delayed allocation has assigned the blocks.
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
