package drills

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
)

// MaxTimeline bounds a report's timeline; the earliest events are kept.
const MaxTimeline = 2000

// timeline merges, in simulated time from arming to the end: the cluster's cloud events, the
// incidents' timelines and the recovery workflows' steps.
func timeline(in ReportInput, events []cloudsim.Event, m members) []anyops.DrillEvent {
	out := []anyops.DrillEvent{}
	add := func(e anyops.DrillEvent) {
		if e.At.Before(in.Armed) || e.At.After(in.End) {
			return
		}
		e.OffsetSeconds = round(e.At.Sub(in.Origin).Seconds())
		out = append(out, e)
	}
	for _, ev := range events {
		if m.has(ev) || ev.Type == "clock.speed" || (strings.HasPrefix(ev.Type, "scenario.") && strings.Contains(ev.Resource, in.Cluster+"-")) {
			add(anyops.DrillEvent{At: ev.Time, Source: anyops.DrillSourceCloud, Type: ev.Type, Resource: ev.Resource, Message: ev.Message})
		}
	}
	for _, inc := range in.Incidents {
		for _, ev := range inc.Timeline {
			add(anyops.DrillEvent{At: in.Clock.ToSim(ev.CreatedAt), Source: anyops.DrillSourceIncident,
				Type: "incident." + ev.Kind, Resource: inc.WorkflowID, Message: ev.Message})
		}
	}
	for _, r := range append(append([]Run(nil), in.Recoveries...), in.Operations...) {
		for _, st := range statusSteps(r.Status) {
			if st.Started != nil {
				add(anyops.DrillEvent{At: in.Clock.ToSim(*st.Started), Source: anyops.DrillSourceWorkflow,
					Type: "step.started", Resource: r.WorkflowID, Message: st.Name})
			}
			if st.Finished != nil {
				typ := "step.done"
				if st.State == "failed" {
					typ = "step.failed"
				}
				msg := st.Name
				if st.Message != "" {
					msg += ": " + st.Message
				}
				add(anyops.DrillEvent{At: in.Clock.ToSim(*st.Finished), Source: anyops.DrillSourceWorkflow, Type: typ, Resource: r.WorkflowID, Message: msg})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if len(out) > MaxTimeline {
		out = out[:MaxTimeline]
	}
	return out
}

// step is what the timeline reads of a step of a workflow's Status (workflows.Step).
type step struct {
	Name     string     `json:"name"`
	State    string     `json:"state"`
	Message  string     `json:"message"`
	Started  *time.Time `json:"started"`
	Finished *time.Time `json:"finished"`
}

// statusSteps reads the steps of a Status answer; none when there is none.
func statusSteps(status json.RawMessage) []step {
	var st struct {
		Steps []step `json:"steps"`
	}
	if len(status) == 0 || json.Unmarshal(status, &st) != nil {
		return nil
	}
	return st.Steps
}
