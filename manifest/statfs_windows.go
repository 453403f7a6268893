//go:build windows

package manifest

import "golang.org/x/sys/windows"

// freeBytes is the space the calling user may still use under dir (quotas
// included), as GetDiskFreeSpaceEx reports it.
func freeBytes(dir string) (int64, bool) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, false
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, false
	}
	return int64(avail), true
}
