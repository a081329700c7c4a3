package drills

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
)

// DRBD as the event log tells it, per resource and instance: what is up, its role, whether
// it is connected, its disk. From it: the time some resource of the cluster had no hot copy
// (a Primary on a live host with a connected UpToDate Secondary), and the interlocks DRBD's
// events can show broken.

type drbdSide struct {
	up, primary, connected bool
	disk                   string // UpToDate, Inconsistent, Diskless
}

type drbdReplay struct {
	sides   map[string]map[string]*drbdSide // resource -> instance -> side
	dead    map[string]bool                 // instances on failed hardware, stopped or gone
	held    map[string]bool                 // resources whose data some disk has held UpToDate
	members members

	noHotBackup time.Duration
	hotAtEnd    bool
	violations  []anyops.DrillViolation
}

// drbdResource names the resource of a drbd.* event: its data's `resource`, else the word
// after "drbd" that cloudsim's messages start with.
func drbdResource(ev cloudsim.Event) string {
	if s, ok := ev.Data["resource"].(string); ok && s != "" {
		return s
	}
	if f := strings.Fields(ev.Message); len(f) > 1 && f[0] == "drbd" {
		return f[1]
	}
	return ""
}

// forced says whether a drbd.primary event was a forced promotion.
func forced(ev cloudsim.Event) bool {
	if b, ok := ev.Data["force"].(bool); ok {
		return b
	}
	return strings.Contains(ev.Message, "force=true")
}

func (d *drbdReplay) side(res, inst string) *drbdSide {
	if d.sides[res] == nil {
		d.sides[res] = map[string]*drbdSide{}
	}
	s := d.sides[res][inst]
	if s == nil {
		s = &drbdSide{}
		d.sides[res][inst] = s
	}
	return s
}

// resources are the cluster's DRBD resources (its volumes' anyops:drbd-resource tags).
func (d *drbdReplay) resources() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range d.members {
		if n := r.Tags[anyops.TagDRBDResource]; n != "" && r.Type == "volume" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// hot reports whether res has a Primary on a live host and a connected UpToDate Secondary.
func (d *drbdReplay) hot(res string) bool {
	primary, copy := false, false
	for inst, s := range d.sides[res] {
		if !s.up || d.dead[inst] {
			continue
		}
		if s.primary {
			primary = true
		} else if s.connected && s.disk == "UpToDate" {
			copy = true
		}
	}
	return primary && copy
}

func (d *drbdReplay) allHot(resources []string) bool {
	for _, r := range resources {
		if !d.hot(r) {
			return false
		}
	}
	return len(resources) > 0
}

func (d *drbdReplay) violation(ev cloudsim.Event, kind, format string, args ...any) {
	d.violations = append(d.violations, anyops.DrillViolation{At: ev.Time, Kind: kind, Resource: ev.Resource, Message: fmt.Sprintf(format, args...)})
}

// apply takes one event, checking the interlocks when inWindow.
func (d *drbdReplay) apply(ev cloudsim.Event, inWindow bool, overrides []Override) {
	inst := ev.Resource
	switch {
	case ev.Type == "fault."+cloudsim.FaultHardwareFailure:
		d.dead[inst] = true
		return
	case ev.Type == "instance.stopping" || ev.Type == "instance.stopped" || ev.Type == "instance.shutting-down" || ev.Type == "instance.terminated":
		d.dead[inst] = true
		for _, sides := range d.sides {
			if s := sides[inst]; s != nil {
				s.up, s.primary, s.connected = false, false, false
			}
		}
		return
	case ev.Type == "instance.running":
		d.dead[inst] = false
		return
	case !strings.HasPrefix(ev.Type, "drbd."):
		return
	}
	res := drbdResource(ev)
	if res == "" {
		return
	}
	s := d.side(res, inst)
	switch ev.Type {
	case "drbd.up":
		s.up, s.connected = true, false
		s.primary = strings.Contains(ev.Message, " as Primary")
		if s.disk == "" {
			s.disk = "UpToDate" // metadata written before the drill: DRBD attaches the disk as it was
		}
	case "drbd.down":
		s.up, s.primary, s.connected = false, false, false
	case "drbd.create-md":
		s.disk = "Inconsistent"
	case "drbd.new-current-uuid":
		for _, o := range d.sides[res] {
			if o.up {
				o.disk = "UpToDate"
			}
		}
		d.held[res] = true
	case "drbd.connected":
		// cloudsim tells a connection once, on the side that made it ("on X connected to Y"):
		// both ends of the pair are connected.
		s.connected = true
		for other, o := range d.sides[res] {
			if other != inst && o.up && !d.dead[other] {
				o.connected = true
			}
		}
	case "drbd.disconnected":
		s.connected = false
	case "drbd.resync-started":
		s.connected, s.disk = true, "Inconsistent"
	case "drbd.synced":
		s.connected, s.disk = true, "UpToDate"
		d.held[res] = true
	case "drbd.lost-disk":
		s.disk = "Diskless"
	case "drbd.secondary":
		s.primary = false
	case "drbd.primary":
		if inWindow {
			for other, o := range d.sides[res] {
				if other != inst && o.up && o.primary && !d.dead[other] {
					d.violation(ev, anyops.ViolationTwoPrimaries, "%s made Primary on %s while Primary on %s", res, inst, other)
				}
			}
			if forced(ev) && s.disk != "UpToDate" && d.held[res] && !overridden(overrides, string(anyops.InterlockNotUpToDate)) {
				d.violation(ev, anyops.ViolationUnsafePromotion, "%s forced Primary on %s with its disk %s, and no audited override", res, inst, s.disk)
			}
		}
		s.primary = true
		if s.disk == "UpToDate" {
			d.held[res] = true
		}
		if forced(ev) {
			s.disk = "UpToDate" // forcing makes this disk's data the data
			d.held[res] = true
		}
	case "drbd.split-brain":
		if inWindow {
			d.violation(ev, anyops.ViolationSplitBrain, "%s", ev.Message)
		}
	}
}

func overridden(overrides []Override, interlock string) bool {
	for _, o := range overrides {
		if o.Interlock == interlock {
			return true
		}
	}
	return false
}

// replayDRBD replays the cluster's DRBD and instance events; the window [from, to] is where
// time without a hot copy is counted and interlocks are checked.
func replayDRBD(events []cloudsim.Event, m members, from, to time.Time, overrides []Override) drbdReplay {
	d := drbdReplay{sides: map[string]map[string]*drbdSide{}, dead: map[string]bool{}, held: map[string]bool{}, members: m}
	resources := d.resources()
	var last time.Time
	cold := false
	for _, ev := range events {
		if !m.has(ev) && !strings.HasPrefix(ev.Type, "drbd.split-brain") {
			continue
		}
		if ev.Time.After(to) {
			break
		}
		inWindow := !ev.Time.Before(from)
		if inWindow {
			if last.IsZero() {
				last, cold = from, !d.allHot(resources)
			}
			if cold {
				d.noHotBackup += ev.Time.Sub(last)
			}
			last = ev.Time
		}
		d.apply(ev, inWindow, overrides)
		if inWindow {
			cold = !d.allHot(resources)
		}
	}
	if last.IsZero() {
		last, cold = from, !d.allHot(resources)
	}
	if cold && to.After(last) {
		d.noHotBackup += to.Sub(last)
	}
	d.hotAtEnd = d.allHot(resources)
	return d
}
