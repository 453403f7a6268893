package main

import "path/filepath"

// layout names every path of one work directory. The native tree holds the
// files every baseline reads; the featurefs caches hold the same files as
// entries under the same symbol/key names.
type layout struct {
	root    string
	bin     string
	logs    string
	native  string // ticks/, cents/, small/, listing/, scan/
	src     string // sources of the write tests
	scratch string // native destinations of the write tests
	image   string // squashfs image of native/cents

	cacheAuto, cacheZstd string

	mntAuto, mntZstd, mntLoop, mntSquash string

	jfs string // JuiceFS volumes: metadata databases, buckets, cache directories
	// JuiceFS mounts: the plain volume with its defaults and with
	// featurefs's cache timeouts, the zstd volume with its defaults.
	mntJFS, mntJFSCached, mntJFSZstd string
}

func newLayout(root string) layout {
	j := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	return layout{
		root:      root,
		bin:       j("bin"),
		logs:      j("logs"),
		native:    j("native"),
		src:       j("src"),
		scratch:   j("scratch"),
		image:     j("cents.sqsh"),
		cacheAuto: j("cache-auto"),
		cacheZstd: j("cache-zstd"),
		mntAuto:   j("mnt", "featurefs-auto"),
		mntZstd:   j("mnt", "featurefs-zstd"),
		mntLoop:   j("mnt", "loopback"),
		mntSquash: j("mnt", "squashfuse"),

		jfs:          j("juicefs"),
		mntJFS:       j("mnt", "juicefs"),
		mntJFSCached: j("mnt", "juicefs-cached"),
		mntJFSZstd:   j("mnt", "juicefs-zstd"),
	}
}

// Names inside the native tree and the mounts.
const (
	ticksEntry   = "ticks/ticks.parquet" // snappy, stored raw under auto
	headEntry    = "ticks/head.parquet"  // snappy, ~100 MiB: head of the sparse commit
	centsEntry   = "cents/cents.parquet" // uncompressed, stored zstd
	smallSymbol  = "small"
	listSymbol   = "listing"
	scanSymbol   = "scan" // scanFiles entries of 1 MiB for the second engine's glob
	scanGlob     = "scan/*.parquet"
	scanFiles    = 150
	ticksGlob    = "ticks/*.parquet"
	commitSource = "commit1m.parquet"
	tinySource   = "tiny.parquet"
)
