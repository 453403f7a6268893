package hashing

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// chunkSize is the fixed buffer a hash streams through: large enough that
// per-read overhead (a syscall, or a FUSE round trip) is noise next to
// SHA-256, small enough that a cancelled context is noticed within a
// millisecond or so.
const chunkSize = 1 << 20

// Hash returns a Footer hash when size > threshold and a Full hash otherwise.
// ctx cancels a long full hash.
func Hash(ctx context.Context, r io.ReaderAt, size, threshold int64) (Sum, error) {
	if size > threshold {
		return FooterHash(ctx, r, size)
	}
	return FullHash(ctx, r, size)
}

// FullHash returns the SHA-256 of the first size bytes of r, the same as
// `sha256sum` of the file. It streams through a fixed buffer and checks ctx
// between chunks.
func FullHash(ctx context.Context, r io.ReaderAt, size int64) (Sum, error) {
	h := sha256.New()
	if err := hashRange(ctx, h, r, 0, size); err != nil {
		return Sum{}, fmt.Errorf("full hash: %w", err)
	}
	return Sum{Hex: hex.EncodeToString(h.Sum(nil)), Method: Full}, nil
}

// FooterHash returns the SHA-256 of size as 8 little-endian bytes followed by
// the file's last 8+footerLength bytes (footer, length, magic). It reads only
// those bytes, so it costs the same for a 1 MiB and a 1 TiB file.
//
// It checks the trailing magic and the footer length (errors wrap ErrTruncated)
// but, reading no head, does not validate the file: Inspect does.
func FooterHash(ctx context.Context, r io.ReaderAt, size int64) (Sum, error) {
	if size < minSize {
		return Sum{}, fmt.Errorf("footer hash: %d bytes, shorter than the smallest parquet file (%d bytes): %w",
			size, minSize, ErrTruncated)
	}
	var end [tailLen]byte
	if err := readAt(r, end[:], size-tailLen); err != nil {
		return Sum{}, fmt.Errorf("footer hash: read tail: %w", err)
	}
	length, err := footerLength(end, size)
	if err != nil {
		return Sum{}, fmt.Errorf("footer hash: %w", err)
	}
	h := sha256.New()
	var sizeLE [8]byte
	binary.LittleEndian.PutUint64(sizeLE[:], uint64(size))
	h.Write(sizeLE[:])
	if err := hashRange(ctx, h, r, size-tailLen-length, length); err != nil {
		return Sum{}, fmt.Errorf("footer hash: %w", err)
	}
	h.Write(end[:]) // the length and magic, already read
	return Sum{Hex: hex.EncodeToString(h.Sum(nil)), Method: Footer}, nil
}

// hashRange writes bytes [off, off+n) of r to h through one buffer of at
// most chunkSize bytes, checking ctx before every read.
func hashRange(ctx context.Context, h hash.Hash, r io.ReaderAt, off, n int64) error {
	if n < 0 {
		return fmt.Errorf("negative length %d", n)
	}
	buf := make([]byte, min(n, chunkSize))
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped after %d of %d bytes: %w", done, n, err)
		}
		p := buf[:min(n-done, int64(len(buf)))]
		if err := readAt(r, p, off+done); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		h.Write(p) // a hash.Hash never returns an error
		done += int64(len(p))
	}
	return nil
}
