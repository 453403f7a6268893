package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// writerCommand is the hidden sub-command the commit tests start many of:
// each writer process writes files and reports how long each close took.
const writerCommand = "writer"

// interrupted is what a writer prints for a close that failed with EINTR.
const interrupted = "EINTR"

// runWriter writes -n copies of -src into -dir as PREFIX-i.parquet and
// prints one line per file: the nanoseconds close(2) took (fsync plus close
// with -fsync), or "EINTR" when a signal interrupted the close (the file
// may then not be committed; close cannot be retried). With -size, each file is -size bytes long: the source's
// bytes up to its footer, a hole, then the footer at the end, so the footer
// still points at the column chunks in the head and the file is valid
// parquet.
func runWriter(args []string) error {
	fs := flag.NewFlagSet(writerCommand, flag.ContinueOnError)
	src := fs.String("src", "", "parquet file to copy")
	dir := fs.String("dir", "", "destination directory")
	prefix := fs.String("prefix", "w", "file name prefix")
	n := fs.Int("n", 1, "files to write")
	fsync := fs.Bool("fsync", false, "fsync before close")
	size := fs.Int64("size", 0, "make each file this long with a hole before the footer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.ReadFile(*src)
	if err != nil {
		return err
	}
	head, footer := data, []byte(nil)
	if *size > 0 {
		tail, err := footerLen(data)
		if err != nil {
			return fmt.Errorf("%s: %w", *src, err)
		}
		if *size < int64(len(data)) {
			return fmt.Errorf("-size %d is smaller than %s", *size, *src)
		}
		head, footer = data[:len(data)-tail], data[len(data)-tail:]
	}
	for i := range *n {
		path := filepath.Join(*dir, fmt.Sprintf("%s-%d.parquet", *prefix, i))
		d, err := writeOne(path, head, footer, *size, *fsync)
		switch {
		case errors.Is(err, syscall.EINTR):
			fmt.Println(interrupted)
		case err != nil:
			return err
		default:
			fmt.Println(d.Nanoseconds())
		}
	}
	return nil
}

func writeOne(path string, head, footer []byte, size int64, fsync bool) (time.Duration, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	for off := 0; off < len(head); off += 1 << 20 {
		if _, err := f.Write(head[off:min(off+1<<20, len(head))]); err != nil {
			f.Close()
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
	}
	if len(footer) > 0 {
		if _, err := f.WriteAt(footer, size-int64(len(footer))); err != nil {
			f.Close()
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
	}
	start := time.Now()
	if fsync {
		if err := f.Sync(); err != nil {
			f.Close()
			return 0, fmt.Errorf("fsync %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", path, err)
	}
	return time.Since(start), nil
}

// footerLen is the length of a parquet file's footer, its length field and
// the closing magic.
func footerLen(data []byte) (int, error) {
	if len(data) < 12 || string(data[:4]) != "PAR1" || string(data[len(data)-4:]) != "PAR1" {
		return 0, fmt.Errorf("not a parquet file")
	}
	n := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	if n+12 > len(data) {
		return 0, fmt.Errorf("footer length %d exceeds the file", n)
	}
	return n + 8, nil
}
