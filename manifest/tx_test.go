package manifest

import (
	"database/sql"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/mattn/go-sqlite3"
)

func TestIsReadOnly(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"write refused by the file system", sqlite3.Error{Code: sqlite3.ErrIoErr, SystemErrno: syscall.EROFS}, true},
		{"wrapped", fmt.Errorf("commit: %w", sqlite3.Error{Code: sqlite3.ErrIoErr, SystemErrno: syscall.EROFS}), true},
		{"read-only database", sqlite3.Error{Code: sqlite3.ErrReadonly}, true},
		{"other I/O error", sqlite3.Error{Code: sqlite3.ErrIoErr, SystemErrno: syscall.EIO}, false},
		{"busy", sqlite3.Error{Code: sqlite3.ErrBusy}, false},
		{"not SQLite", syscall.EROFS, false},
		{"nil", nil, false},
	} {
		if got := isReadOnly(tt.err); got != tt.want {
			t.Errorf("%s: isReadOnly(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestWithTxMarksReadOnlyFailures(t *testing.T) {
	db := openT(t, Options{})
	roErr := sqlite3.Error{Code: sqlite3.ErrIoErr, SystemErrno: syscall.EROFS}
	err := db.withTx(t.Context(), func(*sql.Tx) error { return roErr })
	if !errors.Is(err, ErrReadOnly) {
		t.Errorf("withTx returning %v: %v, want ErrReadOnly", roErr, err)
	}
	if err := db.withTx(t.Context(), func(*sql.Tx) error { return errors.New("other") }); errors.Is(err, ErrReadOnly) {
		t.Errorf("withTx marked %v as read-only", err)
	}
}
