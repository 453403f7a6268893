package blobstore

import (
	"context"
	"testing"
)

func TestRefOfPublishedPathsRoundTrips(t *testing.T) {
	for _, policy := range []Compression{None, Zstd} {
		s := newStore(t, Options{Compression: policy, NoSync: true})
		st := stageGen(t, s, compressible, 1, 100_000)
		p, err := s.Publish(context.Background(), st, 100_000)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Release()
		r, ok := RefOf(p.Blob.Path)
		if !ok {
			t.Fatalf("%s: RefOf(%q) refused a path Publish made", policy, p.Blob.Path)
		}
		if got := r.Path(); got != p.Blob.Path {
			t.Fatalf("%s: RefOf(%q).Path() = %q", policy, p.Blob.Path, got)
		}
	}
}

func TestRefOfRefusesOtherPaths(t *testing.T) {
	for _, path := range []string{
		"",
		"blobs/",
		"blobs/b5/8e/b58e0651a67c686bd8b53bd622480d9a.parquet.gz",
		"blobs/b5/8e/b58e0651a67c686bd8b53bd622480d9a",
		"blobs/b5/8e/B58E0651a67c686bd8b53bd622480d9a.parquet",
		"blobs/b5/8f/b58e0651a67c686bd8b53bd622480d9a.parquet",
		"blobs/b5/8e/b58e0651a67c686bd8b53bd622480d9ag.parquet",
		"blobs/b5/8e/b58e0651a67c686bd8b53bd622480d9z.parquet",
		"blobs/b5/8e/b58e0651a67c686bd8b53bd622480d9a.parquet/x",
		"staging/b58e0651a67c686bd8b53bd622480d9a.parquet",
		"other/b5/8e/b58e0651a67c686bd8b53bd622480d9a.parquet",
		"blobs/b58e/b58e0651a67c686bd8b53bd622480d9a.parquet.zst",
	} {
		if r, ok := RefOf(path); ok {
			t.Errorf("RefOf(%q) = %q, want refused", path, r.Path())
		}
	}
}
