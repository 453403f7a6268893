package manifest_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"featurefs/manifest"
	"featurefs/manifest/manifesttest"
)

// TestSQLiteConformance runs the engine suite against SQLite, each handle a
// separate DB on one file, as separate processes on one cache root are.
func TestSQLiteConformance(t *testing.T) {
	// Handles opened by one subtest with the same name share a file.
	var dirs sync.Map // *testing.T -> directory
	manifesttest.Run(t, func(t *testing.T, name string, now func() time.Time) manifesttest.Engine {
		dir, ok := dirs.Load(t)
		if !ok {
			dir, _ = dirs.LoadOrStore(t, t.TempDir())
		}
		db, err := manifest.Open(context.Background(), filepath.Join(dir.(string), name+".db"), manifest.Options{
			SyncNormal: true, AccessFlushInterval: -1, Now: now, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	})
}
