// Command sampledata writes the small parquet files the README's tour uses:
//
//	go run ./cmd/sampledata DIR
//
// DIR/bars_2024.parquet and DIR/bars.parquet are one-minute bars (ts, price,
// volume) for a trading day each, and DIR/old_cache/AAPL/ holds three
// feature files as an older, plain-directory cache would. The same DIR
// always gets the same bytes.
package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/parquet-go/parquet-go"
)

// bar is one row: a minute's last price and traded volume.
type bar struct {
	TS     time.Time `parquet:"ts,timestamp(microsecond)"`
	Price  float64   `parquet:"price"`
	Volume int64     `parquet:"volume"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./cmd/sampledata DIR")
		os.Exit(2)
	}
	if err := write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "sampledata:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	files := []struct {
		name string
		day  time.Time
		seed uint64
	}{
		{"bars_2024.parquet", time.Date(2024, 3, 1, 14, 30, 0, 0, time.UTC), 1},
		{"bars.parquet", time.Date(2024, 3, 4, 14, 30, 0, 0, time.UTC), 2},
		{"old_cache/AAPL/5d1a0c7e.parquet", time.Date(2023, 11, 6, 14, 30, 0, 0, time.UTC), 3},
		{"old_cache/AAPL/8b42f9d3.parquet", time.Date(2023, 11, 7, 14, 30, 0, 0, time.UTC), 4},
		{"old_cache/AAPL/c07e61aa.parquet", time.Date(2023, 11, 8, 14, 30, 0, 0, time.UTC), 5},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeBars(p, f.day, f.seed); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		fmt.Println(p)
	}
	return nil
}

// writeBars writes a trading day (390 minutes) of bars starting at start.
func writeBars(path string, start time.Time, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rows := make([]bar, 390)
	price := 180.0
	for i := range rows {
		price += rng.NormFloat64() * 0.2
		rows[i] = bar{
			TS:     start.Add(time.Duration(i) * time.Minute),
			Price:  float64(int(price*100)) / 100,
			Volume: 1000 + rng.Int64N(50_000),
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := parquet.NewGenericWriter[bar](f, parquet.Compression(&parquet.Snappy))
	if _, err := w.Write(rows); err != nil {
		f.Close()
		return err
	}
	if err := w.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
