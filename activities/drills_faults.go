package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
)

// A drill's scenario steps as they reach the cloud: its faults handed to cloudsim (LoadScenario)
// and ended at tear-down (ClearFaults), the instance a command step names, the volume a fill
// step fills. The clock, the event log and the outcome are in drills.go, the report in
// drills_report.go.

// LoadScenarioInput is the fault steps of a drill as a cloudsim scenario.
type LoadScenarioInput struct {
	DrillID int64 `json:"drill_id"`
	// Faults is the JSON list of {at, fault}; empty for a scenario without faults.
	Faults json.RawMessage `json:"faults,omitempty"`
}

// LoadScenarioResult says when the scenario was armed (simulated time: cloudsim counts the
// steps from it) and how many faults cloudsim scheduled.
type LoadScenarioResult struct {
	Armed     time.Time `json:"armed"`
	Scheduled int       `json:"scheduled"`
}

// loadProgress is LoadScenario's heartbeat: the newest event before it sent the scenario.
type loadProgress struct {
	Before int64 `json:"before"`
}

// LoadScenario hands the fault steps to cloudsim. cloudsim has no token for a scenario, so
// before sending it the activity heartbeats the newest event's number; a retry first looks
// after it for the scenario.scheduled events of these faults and, finding them, takes them
// instead of scheduling everything twice. Armed is the simulated time cloudsim counts from.
func (d *Drills) LoadScenario(ctx context.Context, in LoadScenarioInput) (LoadScenarioResult, error) {
	sim, err := d.sim()
	if err != nil {
		return LoadScenarioResult{}, err
	}
	var faults []struct {
		At    string         `json:"at"`
		Fault cloudsim.Fault `json:"fault"`
	}
	if len(in.Faults) > 0 {
		if err := json.Unmarshal(in.Faults, &faults); err != nil {
			return LoadScenarioResult{}, invalidInput("drill faults: %v", err)
		}
	}
	if len(faults) == 0 {
		c, err := sim.Clock(ctx)
		return LoadScenarioResult{Armed: c.Now}, err
	}
	var prev loadProgress
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &prev) == nil && prev.Before > 0 {
		if armed, ok, err := findScheduled(ctx, sim, prev.Before, faults); err != nil {
			return LoadScenarioResult{}, err
		} else if ok {
			return LoadScenarioResult{Armed: armed, Scheduled: len(faults)}, nil
		}
	}
	before, err := sim.LastEventSeq(ctx)
	if err != nil {
		return LoadScenarioResult{}, err
	}
	activity.RecordHeartbeat(ctx, loadProgress{Before: before})
	n, err := sim.LoadScenario(ctx, in.Faults)
	if err != nil {
		return LoadScenarioResult{}, err
	}
	armed, ok, err := findScheduled(ctx, sim, before, faults)
	if err != nil {
		return LoadScenarioResult{}, err
	}
	if !ok {
		return LoadScenarioResult{}, fmt.Errorf("cloudsim scheduled %d faults but its log shows no scenario.scheduled events for them", n)
	}
	return LoadScenarioResult{Armed: armed, Scheduled: n}, nil
}

// findScheduled looks after event since for the scenario.scheduled events of faults, in
// order, and returns their time (when the scenario was armed).
func findScheduled(ctx context.Context, sim *SimControl, since int64, faults []struct {
	At    string         `json:"at"`
	Fault cloudsim.Fault `json:"fault"`
}) (time.Time, bool, error) {
	events, err := sim.EventPage(ctx, since, 10000, []string{"scenario.scheduled"})
	if err != nil {
		return time.Time{}, false, err
	}
	matches := func(ev cloudsim.Event, f cloudsim.Fault) bool {
		return strings.HasPrefix(ev.Message, f.Type+" ") && ev.Resource == faultTarget(f)
	}
	for i := 0; i+len(faults) <= len(events); i++ {
		ok := true
		for j, f := range faults {
			if !matches(events[i+j], f.Fault) || !events[i+j].Time.Equal(events[i].Time) {
				ok = false
				break
			}
		}
		if ok {
			return events[i].Time, true, nil
		}
	}
	return time.Time{}, false, nil
}

// faultTarget is what cloudsim names a fault by in its log: its first target field.
func faultTarget(f cloudsim.Fault) string {
	for _, t := range []string{f.InstanceID, f.SnapshotID, f.VolumeID, f.Zone, f.Action} {
		if t != "" {
			return t
		}
	}
	return ""
}

// ResolveInstance finds the running instance a scenario's command names: an id, or
// tag:Key=Value (the first live instance carrying it, as cloudsim resolves a fault's target).
func (d *Drills) ResolveInstance(ctx context.Context, ref string) (string, error) {
	kv, isTag := strings.CutPrefix(ref, "tag:")
	if !isTag {
		return ref, nil
	}
	k, v, _ := strings.Cut(kv, "=")
	f, err := (&Cloud{Clients: d.Clients}).DescribeFleet(ctx, DescribeFleetInput{Tags: map[string]string{k: v}})
	if err != nil {
		return "", err
	}
	for _, i := range f.Instances {
		if i.State == "running" {
			return i.ID, nil
		}
	}
	return "", temporal.NewNonRetryableApplicationError("no running instance is tagged "+kv, ErrInstanceNotFound, nil)
}

// FillVolume carries out a drill's fill step: the volume it names (an id, or the volume tagged
// "tag:Key=Value") is made to hold at least GiB written. It reads what the volume holds first
// and writes only the difference, so that a retry after a fill whose answer was lost writes
// nothing more.
func (d *Drills) FillVolume(ctx context.Context, in anyops.DrillFill) (cloudsim.VolumeData, error) {
	sim, err := d.sim()
	if err != nil {
		return cloudsim.VolumeData{}, err
	}
	id := in.VolumeID
	if kv, isTag := strings.CutPrefix(id, "tag:"); isTag {
		k, v, _ := strings.Cut(kv, "=")
		f, err := (&Cloud{Clients: d.Clients}).DescribeFleet(ctx, DescribeFleetInput{Tags: map[string]string{k: v}})
		if err != nil {
			return cloudsim.VolumeData{}, err
		}
		if len(f.Volumes) != 1 {
			return cloudsim.VolumeData{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%d volumes are tagged %s, want one", len(f.Volumes), kv), ErrInvalidInput, nil)
		}
		id = f.Volumes[0].ID
	}
	have, err := sim.Volume(ctx, id)
	if err != nil {
		return cloudsim.VolumeData{}, err
	}
	missing := in.GiB - float64(have.WrittenBytes)/(1<<30)
	if missing <= 0 {
		return have, nil
	}
	return sim.FillVolume(ctx, id, missing)
}

// ClearFaultsInput names what a drill injected.
type ClearFaultsInput struct {
	Cluster string          `json:"cluster"`
	Faults  json.RawMessage `json:"faults,omitempty"` // the list LoadScenario sent
	Armed   time.Time       `json:"armed"`
}

// ClearFaults ends the drill's faults that are still active: those on its cluster's
// instances and volumes, and those of its own that target no resource (throttles, zone
// outages), since they outlive the cluster and would slow everything else. It returns how many
// it ended; ending one that is gone already is no error.
func (d *Drills) ClearFaults(ctx context.Context, in ClearFaultsInput) (int, error) {
	sim, err := d.sim()
	if err != nil {
		return 0, err
	}
	var ours []struct {
		Fault cloudsim.Fault `json:"fault"`
	}
	if len(in.Faults) > 0 {
		if err := json.Unmarshal(in.Faults, &ours); err != nil {
			return 0, invalidInput("drill faults: %v", err)
		}
	}
	resources, err := d.resources(ctx, in.Cluster)
	if err != nil {
		return 0, err
	}
	member := map[string]bool{}
	for _, r := range resources {
		member[r.ID] = true
	}
	active, err := sim.Faults(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range active {
		if f.Since.Before(in.Armed) {
			continue
		}
		mine := member[f.InstanceID] || member[f.VolumeID]
		for _, o := range ours {
			o := o.Fault
			if f.InstanceID == "" && f.VolumeID == "" && f.SnapshotID == "" && o.Type == f.Type && o.Action == f.Action &&
				o.Zone == f.Zone && o.Rate == f.Rate && o.Count == f.Count {
				mine = true
			}
		}
		if !mine {
			continue
		}
		if err := sim.DeleteFault(ctx, f.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
