package drills

import (
	"sort"
	"time"

	"github.com/anyops/anyops/cloudsim"
)

// Clock maps real time to cloudsim's simulated time and back: simulated time runs at the
// speed in force, which changes at the clock.speed events. One anchor — a simulated moment
// read from GET /_sim/clock, the real time of the read, and the speed it reported — fixes
// the mapping; the changes before and after it extend it piecewise.
type Clock struct {
	Anchor  ClockAnchor   `json:"anchor"`
	Changes []SpeedChange `json:"changes,omitempty"`
}

// ClockAnchor is one reading of cloudsim's clock.
type ClockAnchor struct {
	Real  time.Time `json:"real"`
	Sim   time.Time `json:"sim"`
	Speed float64   `json:"speed"`
}

// SpeedChange is one clock.speed event: from Sim on, Speed instead of Previous.
type SpeedChange struct {
	Sim      time.Time `json:"sim"`
	Speed    float64   `json:"speed"`
	Previous float64   `json:"previous"`
}

// NewClock builds the mapping from an anchor and the clock.speed events among events.
func NewClock(anchor ClockAnchor, events []cloudsim.Event) Clock {
	c := Clock{Anchor: anchor}
	for _, ev := range events {
		if ev.Type != "clock.speed" {
			continue
		}
		sp, ok1 := number(ev.Data["speed"])
		prev, ok2 := number(ev.Data["previous"])
		if ok1 && ok2 && sp > 0 && prev > 0 {
			c.Changes = append(c.Changes, SpeedChange{Sim: ev.Time, Speed: sp, Previous: prev})
		}
	}
	sort.SliceStable(c.Changes, func(i, j int) bool { return c.Changes[i].Sim.Before(c.Changes[j].Sim) })
	return c
}

func scale(d time.Duration, f float64) time.Duration { return time.Duration(float64(d) * f) }

// ToSim is the simulated time at real time r.
func (c Clock) ToSim(r time.Time) time.Time {
	a := c.Anchor
	if a.Speed <= 0 {
		return a.Sim.Add(r.Sub(a.Real))
	}
	realAt, simAt, v := a.Real, a.Sim, a.Speed
	if !r.Before(realAt) {
		for _, ch := range c.Changes {
			if !ch.Sim.After(simAt) {
				continue
			}
			chReal := realAt.Add(scale(ch.Sim.Sub(simAt), 1/v))
			if !chReal.Before(r) {
				break
			}
			realAt, simAt, v = chReal, ch.Sim, ch.Speed
		}
		return simAt.Add(scale(r.Sub(realAt), v))
	}
	for i := len(c.Changes) - 1; i >= 0; i-- {
		ch := c.Changes[i]
		if ch.Sim.After(simAt) {
			continue
		}
		chReal := realAt.Add(-scale(simAt.Sub(ch.Sim), 1/v))
		if !chReal.After(r) {
			break
		}
		realAt, simAt, v = chReal, ch.Sim, ch.Previous
	}
	return simAt.Add(-scale(realAt.Sub(r), v))
}

// ToReal is the real time at simulated time s.
func (c Clock) ToReal(s time.Time) time.Time {
	a := c.Anchor
	if a.Speed <= 0 {
		return a.Real.Add(s.Sub(a.Sim))
	}
	realAt, simAt, v := a.Real, a.Sim, a.Speed
	if !s.Before(simAt) {
		for _, ch := range c.Changes {
			if !ch.Sim.After(simAt) {
				continue
			}
			if !ch.Sim.Before(s) {
				break
			}
			realAt, simAt, v = realAt.Add(scale(ch.Sim.Sub(simAt), 1/v)), ch.Sim, ch.Speed
		}
		return realAt.Add(scale(s.Sub(simAt), 1/v))
	}
	for i := len(c.Changes) - 1; i >= 0; i-- {
		ch := c.Changes[i]
		if ch.Sim.After(simAt) {
			continue
		}
		if !ch.Sim.After(s) {
			break
		}
		realAt, simAt, v = realAt.Add(-scale(simAt.Sub(ch.Sim), 1/v)), ch.Sim, ch.Previous
	}
	return realAt.Add(-scale(simAt.Sub(s), 1/v))
}

// SpeedAt is the speed in force at simulated time s.
func (c Clock) SpeedAt(s time.Time) float64 {
	v := c.Anchor.Speed
	if !s.Before(c.Anchor.Sim) {
		for _, ch := range c.Changes {
			if ch.Sim.After(c.Anchor.Sim) && !ch.Sim.After(s) {
				v = ch.Speed
			}
		}
		return v
	}
	for i := len(c.Changes) - 1; i >= 0; i-- {
		ch := c.Changes[i]
		if !ch.Sim.After(c.Anchor.Sim) && ch.Sim.After(s) {
			v = ch.Previous
		}
	}
	return v
}

// MaxSpeed is the highest speed in force between simulated times from and to.
func (c Clock) MaxSpeed(from, to time.Time) float64 {
	v := c.SpeedAt(from)
	for _, ch := range c.Changes {
		if ch.Sim.After(from) && !ch.Sim.After(to) {
			v = max(v, ch.Speed)
		}
	}
	return v
}

// number reads a JSON number decoded into any.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}
