package drills

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
)

// DRBD as the event log tells it, per resource and instance: what is up, its role, its disk,
// and which peers it is connected to. From it: the times some resource of the cluster had no
// hot copy (a Primary on a live host with an UpToDate Secondary connected to it), and the
// interlocks DRBD's events can show broken.

type drbdSide struct {
	up, primary bool
	// connected is the side's connection as events without a peer tell it (older logs): any.
	connected bool
	disk      string // UpToDate, Inconsistent, Diskless
}

// drbdLink is one connection of a resource: its two instances, in order.
type drbdLink [2]string

func linkOf(a, b string) drbdLink {
	if b < a {
		a, b = b, a
	}
	return drbdLink{a, b}
}

type drbdReplay struct {
	sides map[string]map[string]*drbdSide // resource -> instance -> side
	// links are the resources' connections, from events that name their peer; peered says
	// which resources' events do (the others fall back to drbdSide.connected).
	links   map[string]map[drbdLink]bool
	peered  map[string]bool
	dead    map[string]bool // instances on failed hardware, stopped or gone
	held    map[string]bool // resources whose data some disk has held UpToDate
	members members

	noHotBackup time.Duration
	gaps        []NoHotCopy
	hotAtEnd    bool
	violations  []anyops.DrillViolation
}

// NoHotCopy is a time during which some resource had no hot copy (To == From: an instant,
// between two events of the same moment).
type NoHotCopy struct {
	From, To time.Time
	// Resources are those without a hot copy at some moment of it.
	Resources []string
}

func (g NoHotCopy) String() string {
	return fmt.Sprintf("%s without a hot copy from %s for %.1f s", strings.Join(g.Resources, ", "), g.From.Format("15:04:05.000"), g.To.Sub(g.From).Seconds())
}

// NoHotCopies replays the cluster's DRBD and instance events (cloudsim's, oldest first) and
// returns each time within [from, to] at which a resource of the cluster had no UpToDate
// Secondary connected to its Primary — unless an audited override of the no-uptodate-peer
// interlock allowed it. It is the replay that storage-change-then-failure's
// change_no_hot_backup_seconds sums, and the chaos harness's "never zero hot copies during a
// storage change".
func NoHotCopies(events []cloudsim.Event, resources []Resource, cluster string, from, to time.Time, overrides []Override) []NoHotCopy {
	if overridden(overrides, string(anyops.InterlockNoUpToDatePeer)) {
		return nil
	}
	return replayDRBD(events, clusterMembers(resources, cluster), from, to, overrides).gaps
}

// peerOf is the peer instance a drbd.* event about one connection names, or "".
func peerOf(ev cloudsim.Event) string {
	s, _ := ev.Data["peer"].(string)
	return s
}

// link sets res's connection between a and b.
func (d *drbdReplay) link(res, a, b string, up bool) {
	if d.links[res] == nil {
		d.links[res] = map[drbdLink]bool{}
	}
	d.peered[res] = true
	d.links[res][linkOf(a, b)] = up
}

// unlinkAll takes every connection of inst down, in res ("" : in every resource).
func (d *drbdReplay) unlinkAll(res, inst string) {
	for r, links := range d.links {
		if res != "" && r != res {
			continue
		}
		for l := range links {
			if l[0] == inst || l[1] == inst {
				links[l] = false
			}
		}
	}
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

// hot reports whether res has a Primary on a live host and an UpToDate Secondary on a live
// host connected to it (to any peer, where res's events name no peers).
func (d *drbdReplay) hot(res string) bool {
	live := func(inst string, s *drbdSide) bool { return s.up && !d.dead[inst] }
	for p, ps := range d.sides[res] {
		if !live(p, ps) || !ps.primary {
			continue
		}
		for c, cs := range d.sides[res] {
			if c == p || !live(c, cs) || cs.primary || cs.disk != "UpToDate" {
				continue
			}
			if d.peered[res] && d.links[res][linkOf(p, c)] || !d.peered[res] && cs.connected {
				return true
			}
		}
	}
	return false
}

// cold lists the resources without a hot copy; all of them when there are none.
func (d *drbdReplay) cold(resources []string) []string {
	var out []string
	for _, r := range resources {
		if !d.hot(r) {
			out = append(out, r)
		}
	}
	if len(resources) == 0 {
		return []string{"(no DRBD resource)"}
	}
	return out
}

func (d *drbdReplay) allHot(resources []string) bool { return len(d.cold(resources)) == 0 }

// without counts [from, to] as a time that cold had no hot copy, joining the gap before
// when it ends at from.
func (d *drbdReplay) without(from, to time.Time, cold []string) {
	d.noHotBackup += to.Sub(from)
	if n := len(d.gaps); n > 0 && d.gaps[n-1].To.Equal(from) {
		g := &d.gaps[n-1]
		g.To = to
		for _, r := range cold {
			if !slices.Contains(g.Resources, r) {
				g.Resources = append(g.Resources, r)
			}
		}
		return
	}
	d.gaps = append(d.gaps, NoHotCopy{From: from, To: to, Resources: slices.Clone(cold)})
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
		d.unlinkAll("", inst)
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
	if peer := peerOf(ev); peer != "" {
		switch ev.Type {
		case "drbd.connected", "drbd.resync-started", "drbd.synced":
			d.link(res, inst, peer, true)
		case "drbd.disconnected", "drbd.unrelated-data", "drbd.connect-refused", "drbd.split-brain":
			d.link(res, inst, peer, false)
		}
	}
	switch ev.Type {
	case "drbd.up":
		s.up, s.connected = true, false
		s.primary = strings.Contains(ev.Message, " as Primary")
		if s.disk == "" {
			s.disk = "UpToDate" // metadata written before the drill: DRBD attaches the disk as it was
		}
	case "drbd.down":
		s.up, s.primary, s.connected = false, false, false
		d.unlinkAll(res, inst)
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
	d := drbdReplay{sides: map[string]map[string]*drbdSide{}, links: map[string]map[drbdLink]bool{}, peered: map[string]bool{},
		dead: map[string]bool{}, held: map[string]bool{}, members: m}
	resources := d.resources()
	var last time.Time
	var cold []string
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
				last, cold = from, d.cold(resources)
			}
			if len(cold) > 0 {
				d.without(last, ev.Time, cold)
			}
			last = ev.Time
		}
		d.apply(ev, inWindow, overrides)
		if inWindow {
			cold = d.cold(resources)
		}
	}
	if last.IsZero() {
		last, cold = from, d.cold(resources)
	}
	if len(cold) > 0 && !to.Before(last) {
		d.without(last, to, cold)
	}
	d.hotAtEnd = d.allHot(resources)
	return d
}
