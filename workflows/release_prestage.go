package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// The pre-stage of a release: everything that takes long, done while the old cluster serves.
// The backup moves into the target zone (a storage change: a new backup seeded there, the old
// one retired only once the new one is UpToDate), the new cluster is built (every server at
// once), its backup is seeded from snapshots of the old backup's disks (so the new cluster
// has a hot copy the moment it serves), and each critical volume that DRBD does not replicate
// gets a full snapshot, then incrementals, so the one taken in the window is only a delta.

// stepError is an error of a named step (steps of the pre-stage run side by side).
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func atStep(step string, err error) error {
	if err == nil {
		return nil
	}
	var se *stepError
	if errors.As(err, &se) {
		return err
	}
	return &stepError{step, err}
}

// failErr fails the release at the step the error names, else at the running phase.
func (r *release) failErr(ctx workflow.Context, err error) (ReleaseResult, error) {
	var se *stepError
	if errors.As(err, &se) {
		return r.fail(ctx, se.step, se.err)
	}
	return r.fail(ctx, r.tracker.status.Phase, err)
}

func (r *release) preStage(ctx workflow.Context) error {
	target := r.plan.TargetZone
	// The new cluster's servers build while the backup moves and the first snapshots run.
	building := r.startBuild(ctx)
	snapping := r.startFullSnapshots(ctx)

	if err := r.moveBackup(ctx); err != nil {
		return err
	}
	if err := building.Get(ctx, nil); err != nil {
		return err
	}
	if err := r.seedNewBackup(ctx); err != nil {
		return err
	}
	if err := snapping.Get(ctx, nil); err != nil {
		return err
	}
	r.event("pre-stage done: the backup %s in %s, %s built, %d snapshots ahead", r.backup.Name, target, r.res.NewCluster, len(r.snapshots))
	return r.replan(ctx)
}

// moveBackup runs a storage change that moves the backup into the target zone (seeded, the
// old one retired only once the new one is UpToDate), when it is not there already.
func (r *release) moveBackup(ctx workflow.Context) error {
	target := r.plan.TargetZone
	if r.backup.InstanceID == "" {
		return atStep(stepRelMoveBackup, temporal.NewNonRetryableApplicationError(r.in.Cluster+" has no running backup: a release hands the backup's copies over", activities.ErrInvalidInput, nil))
	}
	if r.backup.Zone == target {
		r.tracker.Skip(stepRelMoveBackup, fmt.Sprintf("%s is in %s already", r.backup.Name, target))
		return nil
	}
	name := truncateName(r.backup.Name+"-"+zoneSuffix(target), 63)
	r.tracker.Start(stepRelMoveBackup, fmt.Sprintf("moving the backup %s to %s as %s (seeded from snapshots, the file server hot throughout)", r.backup.Name, target, name))
	var spec anyops.VolumeSpec
	for _, m := range r.plan.Volumes {
		if m.Server == r.backup.Name && m.Resource != "" {
			spec = anyops.VolumeSpec{Type: anyops.VolumeType(m.Type)}
		}
	}
	if spec.Type == "" {
		spec.Type = anyops.VolumeGP3
	}
	var sc StorageChangeResult
	if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: anyops.StorageChangeWorkflowID(r.backup.Name),
	}), StorageChangeWorkflowType, StorageChangeInput{Server: r.backup.Name, Spec: spec, Zone: target, NewServer: name,
		Policy: StorageChangePolicy{Way: StorageSeed, InitRateMiBps: r.policy.InitRateMiBps, ImageID: r.in.Policy.ImageID},
		Timing: r.timing.RecoveryTiming, Scope: r.scope, RequestedBy: r.in.RequestedBy}).Get(ctx, &sc); err != nil {
		return atStep(stepRelMoveBackup, err)
	}
	if err := r.replan(ctx); err != nil {
		return atStep(stepRelMoveBackup, err)
	}
	if r.backup.Name != sc.NewServer {
		return atStep(stepRelMoveBackup, fmt.Errorf("after the storage change the inventory's running backup is %q, not %s", r.backup.Name, sc.NewServer))
	}
	r.tracker.Done(stepRelMoveBackup, fmt.Sprintf("%s is the backup in %s, UpToDate in every resource", sc.NewServer, target))
	return nil
}

// zoneSuffix is a zone's last part: us-east-1c → 1c.
func zoneSuffix(zone string) string {
	if i := strings.LastIndexByte(zone, '-'); i >= 0 {
		return zone[i+1:]
	}
	return zone
}

// startBuild records the new cluster as building and builds all its servers at once
// (BuildServer children: they bootstrap in parallel). The future is done when all are.
func (r *release) startBuild(ctx workflow.Context) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		set.Set(nil, atStep(stepRelBuild, r.build(ctx)))
	})
	return f
}

func (r *release) build(ctx workflow.Context) error {
	servers := r.plan.Servers
	r.tracker.Start(stepRelBuild, fmt.Sprintf("building %s: %d servers in parallel in %s", r.res.NewCluster, len(servers), r.plan.TargetZone))
	rec := activities.FleetRecord{Clusters: []activities.PlannedCluster{{Name: r.res.NewCluster, Zone: r.plan.TargetZone, Release: r.in.Version, State: anyops.ClusterBuilding}}}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return err
	}
	image := r.in.Policy.ImageID
	if err := together(ctx, servers, func(s activities.PlannedServer) string { return s.Name }, func(s activities.PlannedServer) workflow.Future {
		return workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: BuildServerWorkflowID(s.Name), WorkflowExecutionTimeout: r.timing.BuildTimeout + r.timing.WaitTimeout,
		}), BuildServerWorkflowType, BuildServerInput{Scope: r.scope, Server: s, ImageID: image, Timing: r.timing.RecoveryTiming})
	}, func(s activities.PlannedServer, f workflow.Future) error {
		var b BuiltServer
		if err := f.Get(ctx, &b); err != nil {
			return err
		}
		r.built[s.Name], r.res.Servers[s.Name] = b, b.InstanceID
		switch s.Role {
		case anyops.RoleFile:
			r.newFile = b
		case anyops.RoleBackup:
			r.newBackup = b
		}
		return nil
	}); err != nil {
		return err
	}
	if r.newFile.InstanceID == "" || r.newBackup.InstanceID == "" {
		return temporal.NewNonRetryableApplicationError(r.res.NewCluster+" has no file server or no backup in its plan", activities.ErrInvalidInput, nil)
	}
	r.tracker.Done(stepRelBuild, fmt.Sprintf("%d servers of %s built and bootstrapped", len(r.built), r.res.NewCluster))
	return nil
}

// seedNewBackup makes the new cluster's backup a DRBD node of every resource, seeded from
// snapshots of the (moved) backup's disks, so that it is UpToDate before the window opens.
func (r *release) seedNewBackup(ctx workflow.Context) error {
	var vols []activities.VolumeInfo
	for _, v := range r.facts.Inventory.Volumes {
		if v.Server == r.backup.Name && v.DRBDResource != "" {
			vols = append(vols, v)
		}
	}
	slices.SortFunc(vols, func(a, b activities.VolumeInfo) int { return strings.Compare(a.DRBDResource, b.DRBDResource) })
	if r.policy.NoNewBackupSeed {
		r.tracker.Skip(stepRelSeedBackup, "policy: the new backup resyncs in full after the cutover")
		return nil
	}
	r.tracker.Start(stepRelSeedBackup, fmt.Sprintf("seeding %s from snapshots of %s's %d disks", r.newBackup.Name, r.backup.Name, len(vols)))
	seeds, nodeID, err := seedsFrom(ctx, r.hostCtx(ctx), r.fileServer, r.backup, vols,
		map[string]string{anyops.TagCluster: r.res.NewCluster, anyops.TagKind: string(anyops.VolumeHome), anyops.TagCriticality: string(anyops.Critical)})
	if err != nil {
		return atStep(stepRelSeedBackup, err)
	}
	var spec anyops.VolumeSpec
	for _, m := range r.plan.Volumes {
		if m.Server == r.backup.Name && m.Resource != "" {
			spec = anyops.VolumeSpec{Type: anyops.VolumeType(m.Type)}
		}
	}
	var seeded SeedReplicaResult
	if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: SeedReplicaWorkflowID(r.newBackup.Name)}),
		SeedReplicaWorkflowType, SeedReplicaInput{Scope: r.scope, Target: r.newBackup, Zone: r.plan.TargetZone, NodeID: nodeID, Spec: spec, Seeds: seeds,
			Policy: SeedReplicaPolicy{InitRateMiBps: r.policy.InitRateMiBps}, Timing: r.timing.RecoveryTiming}).Get(ctx, &seeded); err != nil {
		return atStep(stepRelSeedBackup, err)
	}
	r.seeded = true
	for res, vol := range seeded.Volumes {
		r.newBackup.Volumes[res] = vol
	}
	rec := activities.FleetRecord{}
	for _, s := range seeds {
		rec.Volumes = append(rec.Volumes, activities.VolumeRecord{VolumeID: seeded.Volumes[s.Name], Kind: anyops.VolumeHome, Criticality: anyops.Critical,
			SizeGiB: s.SizeGiB, Zone: r.plan.TargetZone, Cluster: r.res.NewCluster, Server: r.newBackup.Name, Device: seedDevice(s.Minor), RAIDGroup: "md0", State: anyops.VolumeInUse})
	}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return atStep(stepRelSeedBackup, err)
	}
	r.tracker.Done(stepRelSeedBackup, fmt.Sprintf("%s UpToDate in %d resources", r.newBackup.Name, len(seeded.Volumes)))
	return nil
}

// snapshotMoves are the plan's volumes that move by snapshot, critical or deferred.
func (r *release) snapshotMoves(deferred bool) []VolumeMove {
	var out []VolumeMove
	for _, m := range r.plan.Volumes {
		if m.Way == anyops.WaySnapshot && m.Deferred == deferred {
			out = append(out, m)
		}
	}
	return out
}

// startFullSnapshots takes, ahead of the window, a first snapshot of each critical volume
// that moves by snapshot and has none (the full one, long), or an incremental one when it has.
func (r *release) startFullSnapshots(ctx workflow.Context) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	moves := r.snapshotMoves(false)
	if len(moves) == 0 {
		r.tracker.Skip(stepRelSnapshots, "every critical volume is replicated or in the target zone")
		set.Set(nil, nil)
		return f
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		r.tracker.Start(stepRelSnapshots, fmt.Sprintf("snapshots ahead of the window of %d unreplicated critical volumes", len(moves)))
		err := r.incrementals(ctx, "prestage")
		if err == nil {
			var done []string
			for _, m := range moves {
				done = append(done, m.VolumeID+" ("+r.snapshots[m.VolumeID].ID+")")
			}
			r.tracker.Done(stepRelSnapshots, "snapshots ahead: "+strings.Join(done, ", ")+"; incrementals until the window")
		}
		set.Set(nil, atStep(stepRelSnapshots, err))
	})
	return f
}

// incrementals takes a snapshot of each critical unreplicated volume at once and waits for
// them: the first of a volume is full, every later one only what changed since.
func (r *release) incrementals(ctx workflow.Context, label string) error {
	moves := r.snapshotMoves(false)
	return together(ctx, moves, func(m VolumeMove) string { return m.VolumeID }, func(m VolumeMove) workflow.Future {
		f, set := workflow.NewFuture(ctx)
		workflow.Go(ctx, func(ctx workflow.Context) {
			snap, err := r.snapshot(ctx, m, label, m.WindowSeconds)
			if err == nil {
				r.snapshots[m.VolumeID] = snap
			}
			set.Set(nil, err)
		})
		return f
	}, nil)
}

// snapSeq numbers the release's snapshots: each step name is taken once.
func (r *release) nextSnapshotStep(label, volume string) string {
	n := 0
	for _, e := range r.tracker.status.Timeline {
		if strings.HasPrefix(e.Message, "snapshot "+volume+" ") {
			n++
		}
	}
	return fmt.Sprintf("snapshot/%s/%s/%d", label, volume, n)
}

// snapshot takes a snapshot of the volume and follows it to completion, showing its percent
// and an ETA in Status; the completed snapshot's rates go to the inventory.
func (r *release) snapshot(ctx workflow.Context, m VolumeMove, label string, predicted float64) (activities.Snapshot, error) {
	step := r.nextSnapshotStep(label, m.VolumeID)
	var snap activities.Snapshot
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.CreateSnapshot, activities.CreateSnapshotInput{
		Scope: r.scope, Step: step, VolumeID: m.VolumeID, Name: m.Name + " " + label,
		Description: fmt.Sprintf("%s of %s for release %s to %s", label, m.VolumeID, r.in.Version, r.plan.TargetZone),
		Tags:        map[string]string{anyops.TagCluster: r.in.Cluster, anyops.TagKind: string(m.Kind)},
	}).Get(ctx, &snap); err != nil {
		return snap, err
	}
	r.event("snapshot %s %s started (%s)", m.VolumeID, snap.ID, label)
	first := m.FirstSnapshot && label == "prestage"
	done, err := r.followSnapshot(ctx, m, snap, predicted)
	if err != nil {
		return done, err
	}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordSnapshot, activities.SnapshotSampleInput{
		VolumeID: m.VolumeID, SnapshotID: done.ID, Started: done.StartTime, Completed: done.CompletedAt, Full: first, FullBytes: done.FullBytes,
	}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("recording the snapshot's rates", "snapshot", done.ID, "err", err)
	}
	return done, nil
}

// followSnapshot polls the snapshot every ProgressInterval until it completes, showing its
// percent and ETA (extrapolated from its progress, else the plan's estimate) in Status.
func (r *release) followSnapshot(ctx workflow.Context, m VolumeMove, snap activities.Snapshot, predicted float64) (activities.Snapshot, error) {
	started := workflow.Now(ctx)
	deadline := started.Add(r.timing.SyncTimeout)
	r.tracker.SetVolume(m.VolumeID, func(v *VolumeProgress) {
		v.Name, v.Kind, v.Way, v.Deferred, v.State = m.Name, m.Kind, m.Way, m.Deferred, StepRunning
		v.Message, v.Percent, v.Started, v.Finished, v.Actual = "snapshot "+snap.ID, 0, &started, nil, 0
		if predicted > 0 {
			v.Predicted = predicted
			eta := started.Add(r.workerDuration(predicted))
			v.ETA = &eta
		}
	})
	for {
		var cur activities.Snapshot
		if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.DescribeSnapshot, activities.SnapshotRef{SnapshotID: snap.ID}).Get(ctx, &cur); err != nil {
			return cur, err
		}
		now := workflow.Now(ctx)
		switch cur.State {
		case "completed":
			r.tracker.SetVolume(m.VolumeID, func(v *VolumeProgress) {
				v.Percent, v.State, v.Message, v.ETA = 100, StepDone, "snapshot "+cur.ID+" completed", nil
			})
			return cur, nil
		case "error":
			r.tracker.SetVolume(m.VolumeID, func(v *VolumeProgress) {
				v.State, v.Message = StepFailed, "snapshot "+cur.ID+" failed: "+cur.StateMessage
			})
			return cur, temporal.NewNonRetryableApplicationError("snapshot "+cur.ID+" of "+m.VolumeID+" failed: "+cur.StateMessage, activities.ErrSnapshotFailed, nil)
		}
		r.tracker.SetVolume(m.VolumeID, func(v *VolumeProgress) {
			v.Percent = cur.Progress
			v.Message = fmt.Sprintf("snapshot %s %d%%", cur.ID, cur.Progress)
			if cur.Progress > 0 {
				eta := started.Add(time.Duration(float64(now.Sub(started)) * 100 / float64(cur.Progress)))
				v.ETA = &eta
			}
		})
		if now.After(deadline) {
			return cur, temporal.NewNonRetryableApplicationError(fmt.Sprintf("snapshot %s of %s at %d%% after %s", cur.ID, m.VolumeID, cur.Progress, r.timing.SyncTimeout), ErrResyncTimeout, nil)
		}
		if err := workflow.Sleep(ctx, r.timing.ProgressInterval); err != nil {
			return cur, err
		}
	}
}
