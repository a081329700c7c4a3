package drills

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/anyops/anyops"
)

// TestReleaseReport proves the release keys come from the drill's release and the cloud: the
// downtime is maintenance → live mapped to simulated time (30 real seconds at speed 10: 300 s),
// the ETA error is against the plan's prediction, a deferred volume reports when it was
// attached after the cutover; a data volume of the cluster the plan did not list, and a
// snapshot-way volume that never moved, are forgotten; a release that left no live_at claims
// no downtime; a drill without a release cannot report.
func TestReleaseReport(t *testing.T) {
	real0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return real0.Add(d).Format(time.RFC3339Nano) }
	closed := real0.Add(10 * time.Minute)
	release := func(result string) Run {
		return Run{WorkflowID: "release/drill-1", Type: "Release", State: "Completed", Started: real0, Closed: &closed, Result: json.RawMessage(result)}
	}
	data := func(id, name string, kind anyops.VolumeKind) Resource {
		return Resource{ID: id, Type: "volume", State: "in-use", Tags: map[string]string{"Name": name, anyops.TagCluster: "drill-1", anyops.TagKind: string(kind)}}
	}
	in := func(extra []Resource, ops ...Run) ReportInput {
		r := input(built(), time.Hour)
		r.Scenario, r.Operations = "py34-release", ops
		r.Resources = append(r.Resources, data("vol-logs", "drill-1-file/logs", anyops.VolumeLogs), data("vol-dbx", "drill-1-file/dropbox", anyops.VolumeDropbox),
			data("vol-boot", "drill-1-file/boot", anyops.VolumeBoot))
		// What the release itself made is tagged with its workflow: never forgotten.
		made := data("vol-new-logs", "drill-1-2-file/logs", anyops.VolumeLogs)
		made.Tags[anyops.TagWorkflow] = "release/drill-1"
		r.Resources = append(append(r.Resources, made), extra...)
		r.Kinds = map[string]string{"Release": kindRelease}
		r.Goals = map[string]float64{"downtime_seconds": 300, "forgotten_volumes": 0}
		return r
	}
	plan := `"plan":{"volumes":[{"volume_id":"vol-f0","way":"replica"},{"volume_id":"vol-logs","name":"drill-1-file/logs","kind":"logs","way":"snapshot"},
		{"volume_id":"vol-dbx","name":"drill-1-file/dropbox","kind":"dropbox","way":"snapshot","deferred":true}]}`
	live := `{"outcome":"live","new_cluster":"drill-1-2",` + plan + `,"volumes":{"vol-logs":"vol-new-logs"},
		"deferred":[{"volume_id":"vol-dbx","kind":"dropbox","target":"vol-new-dbx","completed_at":"` + at(5*time.Minute) + `","predicted_seconds":2000,"actual_seconds":2400}],
		"maintenance_at":"` + at(time.Minute) + `","live_at":"` + at(90*time.Second) + `","predicted_downtime_seconds":240}`

	r, err := Compute(in(nil, release(live)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"downtime_seconds": 300.0, "forgotten_volumes": 0, "eta_error_percent": 20.0, "predicted_downtime_seconds": 240.0,
		"release_outcome": "live", "release_new_cluster": "drill-1-2"}
	for k, v := range want {
		if got := r.Extra[k]; got != v {
			t.Errorf("%s = %v (%T), want %v", k, got, got, v)
		}
	}
	dv := r.Extra["deferred_volumes"].([]DeferredVolume)
	if len(dv) != 1 || dv[0].CompletedAt == nil || !dv[0].CompletedAt.Equal(t0.Add(50*time.Minute)) || dv[0].AfterLiveSeconds == nil || *dv[0].AfterLiveSeconds != 2100 {
		t.Errorf("deferred_volumes %+v, want Dropbox attached at t0+50m, 2100 s after the cutover", dv)
	}
	for _, g := range []string{"downtime_seconds", "forgotten_volumes"} {
		if !r.Goals[g].Met {
			t.Errorf("goal %s %+v, want met", g, r.Goals[g])
		}
	}

	// The seeds' release: logs never moved, and a volume attached by hand that nobody planned.
	forgot := `{"outcome":"live",` + plan + `,"volumes":{},"maintenance_at":"` + at(0) + `","live_at":"` + at(12*time.Minute) + `","predicted_downtime_seconds":240}`
	if r, err = Compute(in([]Resource{data("vol-extra", "drill-1-file/extra", anyops.VolumeLogs)}, release(forgot))); err != nil {
		t.Fatal(err)
	}
	if got := r.Extra["forgotten_volumes"]; got != 3 {
		t.Errorf("forgotten_volumes = %v (%v), want 3: logs and Dropbox never moved, the extra volume not planned", got, r.Extra["forgotten"])
	}
	if r.Goals["forgotten_volumes"].Met || r.Goals["downtime_seconds"].Met {
		t.Errorf("goals met by a release that forgot volumes and was down 7200 s: %+v", r.Goals)
	}

	rolledBack := `{"outcome":"rolled-back",` + plan + `,"maintenance_at":"` + at(time.Minute) + `","predicted_downtime_seconds":240}`
	if r, err = Compute(in(nil, release(rolledBack))); err != nil {
		t.Fatal(err)
	}
	if r.Extra["downtime_seconds"] != nil || r.Extra["release_outcome"] != "rolled-back" || r.Extra["forgotten_volumes"] != 0 {
		t.Errorf("rolled back: %v, want no downtime claimed, nothing forgotten", r.Extra)
	}

	if _, err := releaseReport(in(nil), Report{}); err == nil {
		t.Error("a drill that started no release reported release keys")
	}
}
