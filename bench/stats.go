package main

import (
	"math"
	"slices"
)

// sample holds one figure's values, one per run.
type sample []float64

func (s sample) sorted() []float64 {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func (s sample) median() float64 { return percentile(s, 50) }
func (s sample) min() float64    { return percentile(s, 0) }
func (s sample) max() float64    { return percentile(s, 100) }

// percentile is the nearest-rank percentile p (0..100); NaN when empty.
func percentile(s sample, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := s.sorted()
	if p <= 0 {
		return c[0]
	}
	if len(c)%2 == 0 && p == 50 {
		return (c[len(c)/2-1] + c[len(c)/2]) / 2
	}
	rank := int(math.Ceil(p / 100 * float64(len(c))))
	return c[min(max(rank, 1), len(c))-1]
}
