package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// The release of the harness's table (chaosOperations): the demo cluster moved to the spare
// zone as version 2 — the backup moved ahead by a storage change, the new cluster built, the
// logs volume snapshotted ahead and again in the window, the home resources handed over, and
// Dropbox (full, its snapshot crawling, as in the seeds' post) deferred and attached after the
// cutover. Its crash points land in the three phases issue #10 names: the snapshotting
// (CreateSnapshot), the handover (the new file server's md assemble) and the deferred copy
// (the AttachVolume after the handover: Dropbox's).

// releaseChaosNewCluster is the cluster the table's release builds.
const releaseChaosNewCluster = inventory.DemoCluster + "-2"

// releaseChaosCrashPoints are the release's crash points, in the order it reaches them.
var releaseChaosCrashPoints = []crashPoint{{action: "CreateSnapshot"}, {script: "mdadm --assemble"}, {action: "AttachVolume"}}

// releaseChaosSetUp builds the demo fleet with data on its home volumes, and a full Dropbox
// whose snapshots crawl, so that the deferred copy runs long after the cutover.
func releaseChaosSetUp(t *testing.T, w *chaosWorld) {
	buildDemoFleet(t, w)
	for name, ids := range describeVolumes(t, w.clouds.EC2) {
		gib := 0.0
		switch {
		case strings.Contains(name, "/home"):
			gib = 5
		case strings.HasSuffix(name, "/dropbox"):
			gib = 20
		}
		if gib == 0 {
			continue
		}
		if _, err := w.sim.FillVolume(ids[0], gib); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "/dropbox") {
			if _, err := w.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultSlowSnapshot, VolumeID: ids[0], Factor: 60}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// releaseChaosInput is the table's release: a zone move with no approval to wait for, timed
// for cloudsim's speed with heartbeats short enough for a killed worker's activities to move
// on within seconds, the standby kept 10 simulated minutes.
func releaseChaosInput(speed float64) workflows.ReleaseInput {
	return workflows.ReleaseInput{Cluster: inventory.DemoCluster, Version: "2", TargetZone: inventory.DemoSpareZone, RequestedBy: "chaos",
		Policy: workflows.ReleasePolicy{NoApproval: true, Retention: 10 * time.Minute},
		Timing: workflows.ReleaseTiming{RecoveryTiming: chaosRecoveryTiming(speed), Speed: speed}}
}

func startReleaseChaos(t *testing.T, w *chaosWorld) client.WorkflowRun {
	return w.execute(t, anyops.ReleaseWorkflowID(inventory.DemoCluster), workflows.ReleaseWorkflowType, releaseChaosInput(cloudsim.TestSpeed))
}

// releaseOutcome reads the table's release's result.
func releaseOutcome(t *testing.T, tc client.Client) (workflows.ReleaseResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res workflows.ReleaseResult
	err := tc.GetWorkflow(ctx, anyops.ReleaseWorkflowID(inventory.DemoCluster), "").Get(ctx, &res)
	return res, err
}

// releaseInvariants are the release's own, checked after the table's (which find no duplicate
// by business tags, no lost volume of the demo fleet, never two Primaries, the inventory as
// the cloud has it).
var releaseInvariants = []chaosInvariant{
	{name: "the release is live on the new cluster, every deferred volume attached", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		res, err := releaseOutcome(t, w.tc)
		if err != nil {
			return err.Error()
		}
		return releaseLiveProblems(res)
	}},
	{name: "every data volume of the old cluster still exists or has a verified copy, attached once", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		res, err := releaseOutcome(t, w.tc)
		if err != nil {
			return err.Error()
		}
		return strings.Join(releaseVolumeProblems(t, w.clouds.EC2, res), "; ")
	}},
	interlocksKept,
	{name: "no server of the old cluster terminated while it was live or standby", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		return strings.Join(terminatedBeforeRetired(t, w.clouds.EC2, w.sim), "; ")
	}},
}

// releaseLiveProblems says what keeps a release's result from being live with every deferred
// volume attached after the new cluster was.
func releaseLiveProblems(res workflows.ReleaseResult) string {
	var out []string
	if res.Outcome != workflows.ReleaseLive || res.NewCluster != releaseChaosNewCluster || res.RetiredAt == nil {
		out = append(out, fmt.Sprintf("outcome %q, new cluster %q, retired %v: want %s live and the old cluster retired", res.Outcome, res.NewCluster, res.RetiredAt, releaseChaosNewCluster))
	}
	if len(res.Deferred) == 0 {
		out = append(out, "no deferred volume: Dropbox was not deferred")
	}
	for _, d := range res.Deferred {
		if d.CompletedAt == nil || d.Target == "" || res.LiveAt == nil || d.CompletedAt.Before(*res.LiveAt) {
			out = append(out, fmt.Sprintf("deferred %s (%s): target %q completed %v, live at %v", d.VolumeID, d.Kind, d.Target, d.CompletedAt, res.LiveAt))
		}
	}
	return strings.Join(out, "; ")
}

// releaseVolumeProblems checks every volume of the plan against the cloud: each one the
// release moved has its copy (itself when handed over) attached to exactly one instance, and
// each original still exists (the old cluster's volumes are a further copy until a retirement
// that keeps them).
func releaseVolumeProblems(t *testing.T, c *ec2.Client, res workflows.ReleaseResult) []string {
	t.Helper()
	out, err := c.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{})
	if err != nil {
		return []string{err.Error()}
	}
	attached := map[string][]string{}
	exists := map[string]bool{}
	for _, v := range out.Volumes {
		id := aws.ToString(v.VolumeId)
		exists[id] = true
		for _, a := range v.Attachments {
			attached[id] = append(attached[id], aws.ToString(a.InstanceId))
		}
	}
	var problems []string
	copies := map[string]string{}
	for old, nv := range res.Volumes {
		copies[old] = nv
	}
	for _, d := range res.Deferred {
		copies[d.VolumeID] = d.Target
	}
	for _, m := range res.Plan.Volumes {
		if m.Kind == anyops.VolumeBoot {
			continue
		}
		if !exists[m.VolumeID] {
			problems = append(problems, fmt.Sprintf("%s (%s) is gone", m.VolumeID, m.Name))
		}
		nv, moved := copies[m.VolumeID]
		if m.Way == anyops.WayReplica { // its DRBD replica is what was handed over
			nv, moved = copies[m.Replica]
		}
		switch {
		case m.Way == anyops.WayStays:
		case !moved || nv == "":
			problems = append(problems, fmt.Sprintf("%s (%s, way %s) has no copy", m.VolumeID, m.Name, m.Way))
		case len(attached[nv]) != 1:
			problems = append(problems, fmt.Sprintf("the copy %s of %s (%s) is attached to %v, want one instance", nv, m.VolumeID, m.Name, attached[nv]))
		}
	}
	for id, on := range attached {
		if len(on) > 1 {
			problems = append(problems, fmt.Sprintf("%s attached to %v", id, on))
		}
	}
	return problems
}

// terminatedBeforeRetired replays cloudsim's event log: an instance of the old cluster (named
// live-…, not live-2-…) terminated before the last volume attachment of the run (Dropbox's,
// after the cutover) was terminated while its cluster was still live or a standby.
func terminatedBeforeRetired(t *testing.T, c *ec2.Client, sim *cloudsim.Sim) []string {
	t.Helper()
	names := map[string]string{}
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if err != nil {
		return []string{err.Error()}
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			names[aws.ToString(i.InstanceId)] = tagValue(i.Tags, activities.TagName)
		}
	}
	events := sim.QueryEvents(cloudsim.EventQuery{Types: []string{"instance.terminated", "volume.attached"}})
	lastAttach := time.Time{}
	for _, e := range events {
		if e.Type == "volume.attached" && e.Time.After(lastAttach) {
			lastAttach = e.Time
		}
	}
	var early []string
	for _, e := range events {
		name := names[e.Resource]
		if e.Type != "instance.terminated" || !strings.HasPrefix(name, inventory.DemoCluster+"-") || strings.HasPrefix(name, releaseChaosNewCluster+"-") {
			continue
		}
		if !e.Time.After(lastAttach) {
			early = append(early, fmt.Sprintf("%s (%s) terminated at %s, before the last attachment at %s", name, e.Resource, e.Time.Format(time.TimeOnly), lastAttach.Format(time.TimeOnly)))
		}
	}
	return early
}

// TestReleaseSurvivesKilledWorkers is issue #10's "Must show": a zone move of the demo cluster
// whose worker is killed by SIGKILL three times — during the snapshotting (a CreateSnapshot
// carried out, its answer lost), during the handover (the new file server's md assemble
// carried out, its answer lost) and during the deferred copy (Dropbox's AttachVolume, after
// the new cluster is live, carried out, its answer lost). Each time a fresh worker takes over.
// The release still ends live, nothing is created twice (by business tags), no volume is lost
// or attached twice, and the old cluster is not terminated before its retention is over.
func TestReleaseSurvivesKilledWorkers(t *testing.T) {
	w := newChaosWorld(t, buildAnyops(t), nil, 0)
	setUp := w.startWorker()
	releaseChaosSetUp(t, w)
	setUp.kill9(t)
	current := w.startWorker()
	id := anyops.ReleaseWorkflowID(inventory.DemoCluster)
	snapshotted := w.crash.arm("CreateSnapshot")
	run := startReleaseChaos(t, w)
	ended := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		ended <- run.Get(ctx, nil)
	}()
	kill := func(phase string, hit <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-hit:
		case err := <-ended:
			t.Fatalf("the release ended (%v) before the kill %s", err, phase)
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s was never reached (%s)", what, phase)
		}
		current.kill9(t)
		current = w.startWorker()
		t.Logf("kill -9 %s, at %s", phase, what)
	}
	kill("during the snapshotting", snapshotted, "CreateSnapshot")

	assembled := w.crash.armScript("mdadm --assemble")
	kill("during the handover", assembled, "mdadm --assemble")

	// The deferred copy: armed once the new cluster is live, so that the AttachVolume is
	// Dropbox's and no other.
	waitForStatus(t, w.tc, id, "the new cluster live, Dropbox deferred", func(st workflows.Status) bool {
		return stepState(st, "live") == workflows.StepDone && stepState(st, "deferred-volumes") == workflows.StepRunning
	})
	attached := w.crash.arm("AttachVolume")
	kill("during the deferred copy", attached, "AttachVolume")

	w.crash.releaseAll()
	if err := <-ended; err != nil {
		t.Fatalf("the release did not complete: %v", err)
	}
	res, err := releaseOutcome(t, w.tc)
	if err != nil {
		t.Fatal(err)
	}
	// The harness's invariants (no duplicate by business tags, no lost volume, never two
	// Primaries, the inventory as the cloud has it) and the release's own.
	op := chaosOperation{name: "release", changesFleet: true}
	for _, inv := range append(slices.Clone(chaosInvariants), releaseInvariants...) {
		if msg := inv.check(t, w, op); msg != "" {
			t.Errorf("invariant %q broken: %s", inv.name, msg)
		}
	}
	// The kills landed where they were meant to: after cloudsim carried the call out.
	for _, action := range []string{"CreateSnapshot", sendCommand, "AttachVolume"} {
		if token, n := w.crash.heldCalls(action); n < 1 {
			t.Errorf("the %s whose answer was lost (%q) never reached cloudsim", action, token)
		}
	}
	t.Logf("live on %s: downtime %.0f s (predicted %.0f s), deferred %d, volumes %v", res.FileServer, res.DowntimeSeconds, res.PredictedDowntimeSeconds, len(res.Deferred), res.Volumes)
	w.killAll()
}
