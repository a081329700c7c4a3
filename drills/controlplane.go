package drills

import (
	"sort"
	"time"
)

// controlPlane is the control plane's share of the recovery (docs/drills.md): in the real
// time from the first recovery's start to the recovery point, the gaps in which no activity,
// timer or child of any recovery ran — a task waiting to be dispatched, a workflow task
// between one step's end and the next one's schedule — each converted to simulated time at
// the speed in force then, summed.
func controlPlane(runs []Run, clock Clock, until time.Time) time.Duration {
	if len(runs) == 0 {
		return 0
	}
	start := runs[0].Started
	var busy []Interval
	for _, r := range runs {
		if r.Started.Before(start) {
			start = r.Started
		}
		busy = append(busy, r.Busy...)
	}
	end := clock.ToReal(until)
	if !end.After(start) {
		return 0
	}
	var total time.Duration
	for _, gap := range gaps(busy, start, end) {
		total += clock.ToSim(gap.To).Sub(clock.ToSim(gap.From))
	}
	return total
}

// gaps are the parts of [from, to] that no interval covers.
func gaps(busy []Interval, from, to time.Time) []Interval {
	sorted := make([]Interval, 0, len(busy))
	for _, b := range busy {
		if b.To.After(b.From) {
			sorted = append(sorted, b)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].From.Before(sorted[j].From) })
	var out []Interval
	at := from
	for _, b := range sorted {
		if !b.To.After(at) {
			continue
		}
		if b.From.After(at) {
			out = append(out, Interval{From: at, To: minTime(b.From, to)})
		}
		if b.To.After(at) {
			at = b.To
		}
		if !at.Before(to) {
			return out
		}
	}
	if at.Before(to) {
		out = append(out, Interval{From: at, To: to})
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
