package hashing

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxThriftDepth bounds how deeply structs and containers nest in a footer.
// parquet.thrift itself nests about six deep (FileMetaData, RowGroup,
// ColumnChunk, ColumnMetaData, Statistics); the decoder recurses once a level,
// and a stack overflow is fatal, beyond any recover.
const maxThriftDepth = 64

// Compact protocol type codes (thrift's TCompactProtocol).
const (
	tStop   = 0
	tTrue   = 1
	tFalse  = 2
	tByte   = 3
	tI16    = 4
	tI32    = 5
	tI64    = 6
	tDouble = 7
	tBinary = 8
	tList   = 9
	tSet    = 10
	tMap    = 11
	tStruct = 12
	tUUID   = 13
)

var errShort = errors.New("unexpected end of footer")

// checkThrift walks a compact-protocol struct without decoding it and fails
// on anything the decoder could turn into a huge allocation or a deep
// recursion: a container claiming more elements than bytes remain (the
// decoder allocates the whole slice up front, so a 6-byte header could ask
// for 2^31 elements), or nesting deeper than maxThriftDepth.
//
// Every element occupies at least one byte, so after this check the decoder
// allocates at most a constant factor per footer byte (the largest footer
// struct, a ColumnChunk, is about 560 bytes in memory), and the footer is no
// larger than the file.
func checkThrift(b []byte) error {
	w := thriftWalker{b: b}
	return w.structure(0)
}

type thriftWalker struct {
	b   []byte
	off int
	// prefix says b may stop short of the end of the value: a length
	// beyond it asks for more bytes (errShort) rather than being refused.
	prefix bool
}

func (w *thriftWalker) remaining() int { return len(w.b) - w.off }

func (w *thriftWalker) byte() (byte, error) {
	if w.off >= len(w.b) {
		return 0, errShort
	}
	c := w.b[w.off]
	w.off++
	return c, nil
}

func (w *thriftWalker) skip(n int) error {
	if n > w.remaining() {
		return errShort
	}
	w.off += n
	return nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.off:])
	switch {
	case n == 0:
		return 0, errShort
	case n < 0:
		return 0, fmt.Errorf("varint overflows 64 bits at footer offset %d", w.off)
	}
	w.off += n
	return v, nil
}

// count reads a container or binary length and checks that that many
// one-byte-or-larger items fit in what remains of the footer.
func (w *thriftWalker) count(what string, perItem int) (int, error) {
	at := w.off
	v, err := w.uvarint()
	if err != nil {
		return 0, err
	}
	if v > uint64(w.remaining()/perItem) {
		if w.prefix {
			return 0, errShort
		}
		return 0, fmt.Errorf("%s of %d at footer offset %d, but only %d bytes follow",
			what, v, at, w.remaining())
	}
	return int(v), nil
}

func (w *thriftWalker) structure(depth int) error {
	if depth > maxThriftDepth {
		return fmt.Errorf("structs nested more than %d deep at footer offset %d", maxThriftDepth, w.off)
	}
	for {
		h, err := w.byte()
		if err != nil {
			return err
		}
		if h == tStop {
			return nil
		}
		if h>>4 == 0 {
			// Long form: the field id follows as a zigzag varint.
			if _, err := w.uvarint(); err != nil {
				return err
			}
		}
		if err := w.value(h&0x0f, depth, false); err != nil {
			return err
		}
	}
}

// value skips one value of type t. A boolean struct field carries its value
// in the type code; a boolean container element takes a byte.
func (w *thriftWalker) value(t byte, depth int, element bool) error {
	switch t {
	case tTrue, tFalse:
		if element {
			return w.skip(1)
		}
		return nil
	case tByte:
		return w.skip(1)
	case tI16, tI32, tI64:
		_, err := w.uvarint()
		return err
	case tDouble:
		return w.skip(8)
	case tUUID:
		return w.skip(16)
	case tBinary:
		n, err := w.count("binary length", 1)
		if err != nil {
			return err
		}
		return w.skip(n)
	case tList, tSet:
		h, err := w.byte()
		if err != nil {
			return err
		}
		n := int(h >> 4)
		if n == 0x0f {
			if n, err = w.count("list", 1); err != nil {
				return err
			}
		} else if n > w.remaining() {
			return errShort
		}
		return w.elements(n, depth, h&0x0f)
	case tMap:
		n, err := w.count("map", 2)
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		return w.elements(n, depth, kv>>4, kv&0x0f)
	case tStruct:
		return w.structure(depth + 1)
	}
	return fmt.Errorf("unknown thrift type %d at footer offset %d", t, w.off)
}

// elements skips n container elements, each made of one value of every type
// in types: one for a list or set, key and value for a map.
func (w *thriftWalker) elements(n, depth int, types ...byte) error {
	if depth+1 > maxThriftDepth {
		return fmt.Errorf("containers nested more than %d deep at footer offset %d", maxThriftDepth, w.off)
	}
	for range n {
		for _, t := range types {
			if err := w.value(t, depth+1, true); err != nil {
				return err
			}
		}
	}
	return nil
}
