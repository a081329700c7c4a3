package workflows

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/inventory"
)

// simReleaseTiming is the production release timing at cloudsim's test speed.
func simReleaseTiming() ReleaseTiming {
	t := ReleaseTiming{RecoveryTiming: simTiming()}
	t.ProgressInterval, t.PlanInterval = 50*time.Millisecond, 200*time.Millisecond
	return t
}

// TestReleaseOnCloudsim is a release of the demo fleet in its own zone on the real dev
// server and cloudsim: the plan has every attached volume (logs and Dropbox included), the
// new cluster is built and its backup seeded from snapshots, the old file server stops serving,
// the backup's volumes, logs and Dropbox are handed to the new file server, which serves with
// every resource UpToDate; every client reads and writes there; the old cluster is a standby
// until the retention ends, then retired.
func TestReleaseOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	fleet := e.demoWithData(t, 5)
	var res ReleaseResult
	in := ReleaseInput{Cluster: inventory.DemoCluster, Version: "2", Timing: simReleaseTiming(), RequestedBy: "test",
		Policy: ReleasePolicy{NoApproval: true, Retention: time.Second}}
	e.run(t, ReleaseWorkflowType, anyops.ReleaseWorkflowID(inventory.DemoCluster)+"-"+uuid.NewString(), in, &res)
	t.Logf("result %+v", res)
	if res.Outcome != ReleaseLive || res.FileServer != "live-2-file" || res.RetiredAt == nil {
		t.Fatalf("outcome %s, file server %s, retired %v: want live-2-file live and the old cluster retired", res.Outcome, res.FileServer, res.RetiredAt)
	}
	var kinds []anyops.VolumeKind
	for _, m := range res.Plan.Volumes {
		kinds = append(kinds, m.Kind)
		if m.Kind == "" || m.Way == "" {
			t.Errorf("plan: %+v has no kind or way", m)
		}
	}
	for _, k := range []anyops.VolumeKind{anyops.VolumeHome, anyops.VolumeLogs, anyops.VolumeDropbox} {
		found := false
		for _, got := range kinds {
			found = found || got == k
		}
		if !found {
			t.Errorf("the plan forgot the %s volume: %v", k, kinds)
		}
	}
	newFile := getHost(t, e.endpoint, res.Servers["live-2-file"])
	for _, r := range activities.DemoFleetPlan().DRBDResources() {
		if d := newFile.DRBD[r]; d.Role != "Primary" || d.Disk != "UpToDate" {
			t.Errorf("%s on live-2-file: %+v, want Primary UpToDate", r, d)
		}
	}
	for _, name := range []string{inventory.DemoFileServer + "/logs", inventory.DemoFileServer + "/dropbox"} {
		if _, ok := res.Volumes[fleet.Volumes[name]]; !ok {
			t.Errorf("%s (%s) did not move: %v", name, fleet.Volumes[name], res.Volumes)
		}
	}
}
