package steps

import (
	"math"
	"testing"
	"time"
)

func fixedRand(r float64) func() float64 { return func() float64 { return r } }

func TestBackoffSchedule(t *testing.T) {
	s := &Steps{Rand: fixedRand(0.5)}
	// Equal jitter at its mean: 3/4 of 1, 2, 4, 8, 16, then the 30 s cap.
	want := []int{1, 2, 3, 6, 12, 23, 23, 23}
	for attempt, w := range want {
		if got := s.backoff(attempt, time.Second, 30*time.Second); got != w {
			t.Fatalf("attempt %d: %d s, want %d", attempt, got, w)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	for _, tc := range []struct {
		base, limit time.Duration
	}{
		{time.Second, 30 * time.Second},
		{time.Second, 10 * time.Second},
		{2 * time.Second, 60 * time.Second},
		{100 * time.Millisecond, time.Second},
		{time.Minute, 30 * time.Second}, // base above the cap
	} {
		for _, r := range []float64{0, 0.25, 0.5, 0.75, math.Nextafter(1, 0)} {
			s := &Steps{Rand: fixedRand(r)}
			prev := 0
			for attempt := 0; attempt < 200; attempt++ {
				got := s.backoff(attempt, tc.base, tc.limit)
				d := math.Min(tc.base.Seconds()*math.Pow(2, float64(attempt)), tc.limit.Seconds())
				lo, hi := max(1, int(math.Floor(d/2))), max(1, int(math.Ceil(d)))
				if got < lo || got > hi {
					t.Fatalf("base %s cap %s r %v attempt %d: %d s outside [%d, %d]", tc.base, tc.limit, r, attempt, got, lo, hi)
				}
				if got < 1 {
					t.Fatalf("below 1 s: %d", got)
				}
				if float64(got) > math.Max(1, math.Ceil(tc.limit.Seconds())) {
					t.Fatalf("above the cap: %d", got)
				}
				if got < prev {
					t.Fatalf("not monotonic with a fixed jitter: %d after %d", got, prev)
				}
				prev = got
			}
		}
	}
	// The default jitter source stays within the same bounds.
	s := &Steps{}
	for attempt := 0; attempt < 1000; attempt++ {
		if got := s.backoff(attempt%10, time.Second, 30*time.Second); got < 1 || got > 30 {
			t.Fatalf("attempt %d: %d", attempt, got)
		}
	}
}

// suspendChecks is the number of CheckSuspend iterations until a suspend
// that takes d is seen done, with the default backoff (base 1 s, cap 30 s) and
// the jitter at its mean: the first check right after the request, then one
// after every backoff wait (Lambda and transition latencies ignored).
func suspendChecks(d time.Duration) int {
	s := &Steps{Rand: fixedRand(0.5)}
	cfg := Config{}.withDefaults()
	var elapsed time.Duration
	checks := 1
	for elapsed < d {
		elapsed += time.Duration(s.backoff(checks-1, cfg.SuspendBackoffBase, cfg.SuspendBackoffCap)) * time.Second
		checks++
	}
	return checks
}

// The iteration counts the README's cost figures use (and TestCostFigures in
// internal/localstack multiplies by the measured transitions per iteration).
func TestSuspendChecksForCost(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{
		{0, 1},
		{time.Second, 2},
		{time.Minute, 8},
		{10 * time.Minute, 32},
	} {
		if got := suspendChecks(tc.d); got != tc.want {
			t.Fatalf("suspend of %s: %d checks, want %d", tc.d, got, tc.want)
		}
	}
}
