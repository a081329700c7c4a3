package drills

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/anyops/anyops"
)

// The keys every drill that started a release adds (docs/drills.md): the window's downtime in
// simulated time, the volumes of the cluster the release left behind, the deferred volumes with
// their completion times, and how far the plan's predicted downtime was off.
var releaseKeys = []string{"downtime_seconds", "forgotten_volumes", "forgotten", "deferred_volumes", "eta_error_percent",
	"release_outcome", "release_new_cluster", "predicted_downtime_seconds"}

var releaseNumeric = []string{"downtime_seconds", "forgotten_volumes", "eta_error_percent", "predicted_downtime_seconds"}

// kindRelease is the operation kind of Release (workflows.KindRelease, which this package
// cannot import).
const kindRelease = "release"

// releaseResult is the part of the release's result (workflows.ReleaseResult) the report
// reads.
type releaseResult struct {
	Outcome string `json:"outcome"`
	Plan    struct {
		Volumes []struct {
			VolumeID string            `json:"volume_id"`
			Name     string            `json:"name"`
			Kind     anyops.VolumeKind `json:"kind"`
			Way      anyops.VolumeWay  `json:"way"`
			Deferred bool              `json:"deferred"`
		} `json:"volumes"`
	} `json:"plan"`
	NewCluster string            `json:"new_cluster"`
	Volumes    map[string]string `json:"volumes"`
	Deferred   []struct {
		VolumeID         string     `json:"volume_id"`
		Kind             string     `json:"kind"`
		Target           string     `json:"target"`
		CompletedAt      *time.Time `json:"completed_at"`
		PredictedSeconds float64    `json:"predicted_seconds"`
		ActualSeconds    float64    `json:"actual_seconds"`
	} `json:"deferred"`
	MaintenanceAt            *time.Time `json:"maintenance_at"`
	LiveAt                   *time.Time `json:"live_at"`
	PredictedDowntimeSeconds float64    `json:"predicted_downtime_seconds"`
}

// DeferredVolume is one deferred volume of the report: where it went and when it was attached
// (simulated time, and seconds after the new cluster was live).
type DeferredVolume struct {
	VolumeID         string     `json:"volume_id"`
	Kind             string     `json:"kind"`
	Target           string     `json:"target,omitempty"`
	CompletedAt      *time.Time `json:"completed_at"`
	AfterLiveSeconds *float64   `json:"after_live_seconds"`
	PredictedSeconds float64    `json:"predicted_seconds"`
	ActualSeconds    float64    `json:"actual_seconds"`
}

// releaseReport reads the drill's release. downtime_seconds is maintenance start → every
// client serving on the new cluster (the release's LiveAt, set after its health checks; after
// a rollback, when the old cluster serves again), both mapped to simulated time through the
// drill's clock; null when the release opened no window. forgotten_volumes counts the drill cluster's data volumes (every non-boot
// volume the cloud shows with its tag) that the plan did not list, and the snapshot-way
// volumes that ended neither handed over nor deferred and attached. eta_error_percent is
// |actual − predicted| / actual of the downtime.
func releaseReport(in ReportInput, _ Report) (map[string]any, error) {
	op, err := in.operationOf(kindRelease)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"release_outcome": op.State, "release_new_cluster": "", "forgotten": []string{}, "deferred_volumes": []DeferredVolume{}}
	for _, k := range releaseNumeric {
		out[k] = nil
	}
	if len(op.Result) == 0 || string(op.Result) == "null" {
		return out, nil
	}
	var res releaseResult
	if err := json.Unmarshal(op.Result, &res); err != nil {
		return nil, fmt.Errorf("the %s operation's result: %w", kindRelease, err)
	}
	out["release_outcome"], out["release_new_cluster"] = res.Outcome, res.NewCluster
	out["predicted_downtime_seconds"] = round(res.PredictedDowntimeSeconds)
	if res.MaintenanceAt != nil && res.LiveAt != nil {
		down := in.Clock.ToSim(*res.LiveAt).Sub(in.Clock.ToSim(*res.MaintenanceAt)).Seconds()
		out["downtime_seconds"] = round(down)
		if down > 0 {
			diff := down - res.PredictedDowntimeSeconds
			if diff < 0 {
				diff = -diff
			}
			out["eta_error_percent"] = round(100 * diff / down)
		}
	}
	planned := map[string]bool{}
	deferredDone := map[string]bool{}
	for _, d := range res.Deferred {
		if d.CompletedAt != nil {
			deferredDone[d.VolumeID] = true
		}
	}
	var forgotten []string
	for _, v := range res.Plan.Volumes {
		planned[v.VolumeID] = true
		if v.Way == anyops.WaySnapshot && res.Outcome == "live" && res.Volumes[v.VolumeID] == "" && !deferredDone[v.VolumeID] {
			forgotten = append(forgotten, v.VolumeID+" ("+v.Name+": planned, never moved)")
		}
	}
	for _, r := range in.Resources {
		if r.Type == "volume" && r.Cluster() == in.Cluster && r.Tags[anyops.TagKind] != string(anyops.VolumeBoot) &&
			r.Tags[anyops.TagKind] != "" && !planned[r.ID] && r.Tags[anyops.TagWorkflow] != op.WorkflowID {
			forgotten = append(forgotten, r.ID+" ("+r.Tags["Name"]+": not in the plan)")
		}
	}
	if forgotten == nil {
		forgotten = []string{}
	}
	out["forgotten"], out["forgotten_volumes"] = forgotten, len(forgotten)
	var deferred []DeferredVolume
	for _, d := range res.Deferred {
		dv := DeferredVolume{VolumeID: d.VolumeID, Kind: d.Kind, Target: d.Target, PredictedSeconds: round(d.PredictedSeconds), ActualSeconds: round(d.ActualSeconds)}
		if d.CompletedAt != nil {
			at := in.Clock.ToSim(*d.CompletedAt)
			dv.CompletedAt = &at
			if res.LiveAt != nil {
				after := round(at.Sub(in.Clock.ToSim(*res.LiveAt)).Seconds())
				dv.AfterLiveSeconds = &after
			}
		}
		deferred = append(deferred, dv)
	}
	if deferred != nil {
		out["deferred_volumes"] = deferred
	}
	return out, nil
}
