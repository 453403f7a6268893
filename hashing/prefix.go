package hashing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// Prefix is a full hash fed with a file's bytes as a writer appends them, so
// that the commit of a file written front to back re-reads none of it
// instead of all of it.
//
// It covers the file's first Len bytes. The owner feeds it every write that
// starts exactly at Len and must drop it once the file changes below Len: an
// overwrite or a truncate there leaves it describing bytes the file no longer
// holds. Writes past Len (a hole, a footer written first) need nothing: Hash
// reads whatever lies beyond Len from the file.
//
// A Prefix gives up, keeping no state, once it grows past its limit, at most
// the footer-hash threshold: a larger file gets a footer hash, and hashing it
// in full would only cost CPU. Hash then reads the whole file if it must.
type Prefix struct {
	h     hash.Hash
	n     int64
	limit int64
}

// NewPrefix returns an empty prefix hash that gives up past limit bytes.
func NewPrefix(limit int64) *Prefix {
	return &Prefix{h: sha256.New(), limit: limit}
}

// Append feeds b, the bytes just written at offset Len. It reports false once
// the prefix has given up; the owner then drops it.
func (p *Prefix) Append(b []byte) bool {
	if p.h == nil {
		return false
	}
	if p.n+int64(len(b)) > p.limit {
		p.h = nil
		return false
	}
	p.h.Write(b) // a hash.Hash never returns an error
	p.n += int64(len(b))
	return true
}

// Len is how many leading bytes the prefix covers.
func (p *Prefix) Len() int64 { return p.n }

// Hash returns what Hash(ctx, r, size, threshold) would, reading only bytes
// [Len, size) of r when a full hash is due. size must not be below Len.
// The prefix then covers size bytes, so calling Hash again on an unchanged
// file reads nothing.
func (p *Prefix) Hash(ctx context.Context, r io.ReaderAt, size, threshold int64) (Sum, error) {
	if size > threshold {
		return FooterHash(ctx, r, size)
	}
	if p.h == nil || size < p.n {
		// Given up, or asked about bytes it no longer describes.
		return FullHash(ctx, r, size)
	}
	if err := hashRange(ctx, p.h, r, p.n, size-p.n); err != nil {
		// Part of the range may have been fed: the state is unknown.
		p.h = nil
		return Sum{}, fmt.Errorf("full hash: %w", err)
	}
	p.n = size
	return Sum{Hex: hex.EncodeToString(p.h.Sum(nil)), Method: Full}, nil
}
