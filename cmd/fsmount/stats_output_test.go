package main

import (
	"testing"
	"time"
)

func TestHumanFormats(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 10 << 20: "10 MiB",
		150 << 30: "150 GiB", 3 << 40: "3 TiB", -2048: "-2 KiB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		1500 * time.Millisecond: "1.5s", 90 * time.Minute: "1.5h", 36 * time.Hour: "1.5d",
		4 * 7 * 24 * time.Hour: "4w", 250 * time.Millisecond: "250ms",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
	if got := nouns(1, "entry", "entries"); got != "1 entry" {
		t.Errorf("nouns(1) = %q", got)
	}
	if got := nouns(2000, "entry", "entries"); got != "2,000 entries" {
		t.Errorf("nouns(2000) = %q", got)
	}
}
