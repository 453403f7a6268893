// Package hashing validates, describes and hashes parquet files.
//
// Everything here works from an io.ReaderAt and a size, reads only what it
// needs (head, tail, footer and page headers for validation and description;
// the tail alone for a footer hash), and keeps memory constant whatever the
// file's size: the only buffers sized from the file are the footer, whose
// length is checked against the file's size and MaxFooterSize before
// anything is allocated for it, what the footer decodes into, and a page
// header buffer of at most 1 MiB. A Validator bounds what concurrent
// validations hold together.
//
// # Validation failures
//
// Inspect reports every way a file can fail validation with an error wrapping
// exactly one sentinel. The leading magic decides whether a file is parquet at
// all; after that, a missing end is truncation and an unreadable footer is
// corruption:
//
//	input                                      sentinel
//	empty file, or fewer than 12 bytes         ErrTruncated (ErrNotParquet if
//	  that do start like "PAR1"                  the bytes present are not "PAR1")
//	no leading PAR1 (or an encrypted PARE)     ErrNotParquet
//	leading PAR1 but no trailing PAR1          ErrTruncated: a writer that dies or
//	  (tail cut inside the magic, right after    a copy cut short leaves exactly this
//	  the footer length, or mid-file)
//	footer length past the start of the file   ErrTruncated
//	footer longer than MaxFooterSize, or one   ErrBadFooter
//	  that does not decode, or decodes into
//	  an inconsistent schema/row groups
//	column chunk outside the data region or    ErrBadLayout: what two files
//	  overlapping another, page headers that     concatenated, a file appended to
//	  do not parse or do not end exactly at      another, or pages overwritten
//	  the chunk's end                            look like
//
// Errors from the io.ReaderAt itself (a short read, EIO) wrap none of the
// sentinels: they are I/O failures, not verdicts on the file.
package hashing

import (
	"errors"
)

// Sentinel errors for each way a file can fail validation. Callers test them
// with errors.Is; every validation error wraps exactly one of them.
var (
	// ErrNotParquet: the file does not start with the PAR1 magic.
	ErrNotParquet = errors.New("not a parquet file")
	// ErrTruncated: the file starts like parquet but is too short to hold
	// magic, footer and footer length, does not end with the PAR1 magic, or
	// its footer length points past the start of the file.
	ErrTruncated = errors.New("truncated parquet file")
	// ErrBadFooter: the footer is longer than MaxFooterSize, its bytes do
	// not parse as a parquet FileMetaData, or what they describe is
	// inconsistent (schema tree, column chunks).
	ErrBadFooter = errors.New("corrupt parquet footer")
	// ErrBadLayout: the footer parses but the file's pages are not where it
	// says: a column chunk outside the data region or overlapping another,
	// or page headers that do not parse or do not walk exactly to the end
	// of their chunk.
	ErrBadLayout = errors.New("parquet pages do not match the footer")
)

// Method names how a hash was computed, as stored in the manifest.
type Method string

const (
	// Full is the SHA-256 of every byte (equal to `sha256sum`).
	Full Method = "full"
	// Footer is the SHA-256 of the size (8 bytes, little endian) followed by the
	// last 8+footerLength bytes of the file.
	Footer Method = "footer"
)

// DefaultFooterThreshold is the size above which a file gets a footer hash.
const DefaultFooterThreshold = 100 << 20

// Info describes a valid parquet file from its footer alone.
type Info struct {
	// Rows is the footer's num_rows.
	Rows int64
	// StartTS and EndTS are Unix seconds (rounded down) taken from the time
	// column's footer statistics: the least minimum and the greatest maximum
	// over all row groups. Both are 0 when the file has no time column or the
	// statistics do not cover every row group that holds a value.
	StartTS int64
	EndTS   int64
	// TimeColumn is the dotted path of the time column, "" when there is none.
	TimeColumn string
	// FooterLength is the length of the thrift-encoded footer.
	FooterLength int64
}

// Sum is a hash of a parquet file and the method that produced it.
type Sum struct {
	// Hex is the SHA-256 in lowercase hex.
	Hex    string
	Method Method
}
