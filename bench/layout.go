package main

import "path/filepath"

// layout names every path of one work directory. The native tree holds the
// files every baseline reads; the featurefs caches hold the same files as
// entries under the same symbol/key names.
type layout struct {
	root    string
	bin     string
	logs    string
	native  string // ticks/, cents/, small/, listing/
	src     string // sources of the write tests
	scratch string // native destinations of the write tests
	image   string // squashfs image of native/cents

	cacheAuto, cacheZstd string

	mntAuto, mntZstd, mntLoop, mntSquash string
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
	}
}

// Names inside the native tree and the mounts.
const (
	ticksEntry   = "ticks/ticks.parquet" // snappy, stored raw under auto
	headEntry    = "ticks/head.parquet"  // snappy, ~100 MiB: head of the sparse commit
	centsEntry   = "cents/cents.parquet" // uncompressed, stored zstd
	smallSymbol  = "small"
	listSymbol   = "listing"
	ticksGlob    = "ticks/*.parquet"
	commitSource = "commit1m.parquet"
	tinySource   = "tiny.parquet"
)
