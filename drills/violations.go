package drills

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
)

// reAttachTarget reads the instance of cloudsim's "volume V attaching to I as D" and "volume
// V attached to I as D" when the event has no `instance` data.
var reAttachTarget = regexp.MustCompile(`\battach(?:ing|ed) to (i-[0-9a-f]+)\b`)

func attachInstance(ev cloudsim.Event) string {
	if s, ok := ev.Data["instance"].(string); ok && s != "" {
		return s
	}
	if m := reAttachTarget.FindStringSubmatch(ev.Message); m != nil {
		return m[1]
	}
	return ""
}

// attachViolations finds a volume attached (or attaching) to an instance while it is attached
// to another: EBS refuses it, so it would mean the simulation or a workflow broke the rule.
func attachViolations(events []cloudsim.Event, from, to time.Time) []anyops.DrillViolation {
	attached := map[string]string{} // volume -> instance
	var out []anyops.DrillViolation
	for _, ev := range events {
		if ev.Time.After(to) {
			break
		}
		switch ev.Type {
		case "volume.attaching", "volume.attached":
			inst := attachInstance(ev)
			if prev := attached[ev.Resource]; prev != "" && inst != "" && prev != inst && !ev.Time.Before(from) {
				out = append(out, anyops.DrillViolation{At: ev.Time, Kind: anyops.ViolationDoubleAttach, Resource: ev.Resource,
					Message: fmt.Sprintf("volume %s attached to %s while attached to %s", ev.Resource, inst, prev)})
			}
			if inst != "" {
				attached[ev.Resource] = inst
			}
		case "volume.detached", "volume.deleted":
			delete(attached, ev.Resource)
		}
	}
	return out
}

// terminatedClusters finds clusters that lost their last instance to termination in the
// window while they were not retired: the "never terminate a live cluster" interlock broken.
func terminatedClusters(events []cloudsim.Event, all []Resource, states map[string]anyops.ClusterState, from, to time.Time) []anyops.DrillViolation {
	clusterOf := map[string]string{}
	for _, r := range all {
		if r.Type == "instance" && r.Cluster() != "" {
			clusterOf[r.ID] = r.Cluster()
		}
	}
	// Alive at the start of the window: not terminated now, or terminated within it; and not
	// launched within it.
	alive := map[string]map[string]bool{}
	launchedLater, terminatedIn := map[string]bool{}, map[string]bool{}
	for _, ev := range events {
		if ev.Time.Before(from) || ev.Time.After(to) {
			continue
		}
		switch ev.Type {
		case "instance.launched":
			launchedLater[ev.Resource] = true
		case "instance.terminated":
			terminatedIn[ev.Resource] = true
		}
	}
	for _, r := range all {
		c := clusterOf[r.ID]
		if c == "" || launchedLater[r.ID] || (r.State == "terminated" && !terminatedIn[r.ID]) {
			continue
		}
		if alive[c] == nil {
			alive[c] = map[string]bool{}
		}
		alive[c][r.ID] = true
	}
	var out []anyops.DrillViolation
	for _, ev := range events {
		if ev.Time.Before(from) || ev.Time.After(to) {
			continue
		}
		c := clusterOf[ev.Resource]
		if c == "" {
			continue
		}
		switch ev.Type {
		case "instance.launched":
			if alive[c] == nil {
				alive[c] = map[string]bool{}
			}
			alive[c][ev.Resource] = true
		case "instance.terminated":
			if !alive[c][ev.Resource] {
				continue
			}
			delete(alive[c], ev.Resource)
			if len(alive[c]) == 0 && states[c] != anyops.ClusterRetired {
				out = append(out, anyops.DrillViolation{At: ev.Time, Kind: anyops.ViolationLiveClusterTerminated, Resource: c,
					Message: fmt.Sprintf("cluster %s (%s) lost its last instance %s to termination", c, stateOr(states[c]), ev.Resource)})
			}
		}
	}
	return out
}

func stateOr(s anyops.ClusterState) string {
	if s == "" {
		return "not in the inventory"
	}
	return string(s)
}

// duplicates finds the cluster's resources that share business tags: instances or volumes
// one step of one operation made twice (anyops:scope and anyops:step), and live instances
// with one Name.
func duplicates(all []Resource, cluster string) []anyops.DrillDuplicate {
	groups := map[string][]Resource{}
	var keys []string
	add := func(key string, r Resource) {
		if _, ok := groups[key]; !ok {
			keys = append(keys, key)
		}
		for _, o := range groups[key] {
			if o.ID == r.ID {
				return // one resource listed twice (a drill on live lists live's) is no duplicate
			}
		}
		groups[key] = append(groups[key], r)
	}
	for _, r := range all {
		if c := r.Cluster(); c != cluster && c != cluster+"-standby" {
			continue
		}
		if scope, step := r.Tags[anyops.TagScope], r.Tags[anyops.TagStep]; scope != "" && step != "" {
			add(r.Type+"\x00step\x00"+scope+"\x00"+step, r)
		}
		if name := r.Tags["Name"]; r.Type == "instance" && name != "" && r.State != "terminated" && r.State != "shutting-down" {
			add(r.Type+"\x00name\x00"+name, r)
		}
	}
	sort.Strings(keys)
	out := []anyops.DrillDuplicate{}
	seen := map[string]bool{}
	for _, k := range keys {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		d := anyops.DrillDuplicate{Type: g[0].Type, Tags: map[string]string{}}
		for _, r := range g {
			d.IDs = append(d.IDs, r.ID)
		}
		sort.Strings(d.IDs)
		id := fmt.Sprint(d.IDs)
		if seen[id] {
			continue // the same resources by both keys: one duplicate
		}
		seen[id] = true
		for _, t := range []string{"Name", anyops.TagScope, anyops.TagStep} {
			if v := g[0].Tags[t]; v != "" {
				d.Tags[t] = v
			}
		}
		out = append(out, d)
	}
	return out
}
