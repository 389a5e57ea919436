package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// sample is the figures of one measurement over its repetitions.
type sample []float64

func (s sample) sorted() []float64 { return slices.Sorted(slices.Values(s)) }

// median of the repetitions (the mean of the middle two for an even count).
func (s sample) median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	v := s.sorted()
	m := len(v) / 2
	if len(v)%2 == 0 {
		return (v[m-1] + v[m]) / 2
	}
	return v[m]
}

func (s sample) min() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Min(s)
}

func (s sample) max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Max(s)
}

// ratio is the per-repetition ratio s[i]/base[i] (runs paired by interleaving).
func ratio(s, base sample) sample {
	out := make(sample, 0, len(s))
	for i := range min(len(s), len(base)) {
		if base[i] != 0 {
			out = append(out, s[i]/base[i])
		}
	}
	return out
}

// percentile returns the p-th percentile (0..100) of durations d, nearest rank.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	v := slices.Sorted(slices.Values(d))
	i := int(math.Ceil(p/100*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

// Formats: "12,345 (12,001–12,790)" and friends.

func fmtRate(s sample) string {
	return fmt.Sprintf("%s (%s–%s)", thousands(s.median()), thousands(s.min()), thousands(s.max()))
}

func fmtRatio(s sample) string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.median(), s.min(), s.max())
}

// fmt2 formats with two decimals: milliseconds, µs, seconds, percent.
func fmt2(s sample) string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.median(), s.min(), s.max())
}

func fmtMiB(s sample) string {
	return fmt.Sprintf("%.1f (%.1f–%.1f)", s.median(), s.min(), s.max())
}

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
