//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows)

package gc

import (
	"errors"
	"os"
	"runtime"
)

// tryLock fails: without a lock two runs could delete under each other.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("gc lock not supported on " + runtime.GOOS)
}

func unlock(*os.File) error { return nil }
