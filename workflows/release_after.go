package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// After the cutover: the deferrable volumes (Dropbox) follow in the background — their
// snapshots start the moment the window opens, from data that holds still, and each becomes a
// volume on the new file server once the new cluster is live — and the old cluster stays a
// standby (its file server a connected copy of every resource) for the retention period, then
// is retired: it leaves the resources and its servers are terminated, their volumes kept.

// deferredMoves are the plan's deferrable volumes that move by snapshot.
func (r *release) deferredMoves() []VolumeMove { return r.snapshotMoves(true) }

// startDeferred moves one volume after the cutover: its snapshot at once, followed in Status
// with its percent and ETA; its volume in the target zone, attached and mounted on the new file
// server, only once the new cluster is live (a release that rolls back keeps the snapshot and
// attaches nothing).
func (r *release) startDeferred(ctx workflow.Context, m VolumeMove) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	started := workflow.Now(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		snap, err := r.snapshot(ctx, m, "deferred", m.AfterSeconds)
		if err != nil {
			set.Set(nil, err)
			return
		}
		r.snapshots[m.VolumeID] = snap
		if err := workflow.Await(ctx, func() bool { return r.live || r.res.Outcome == ReleaseRolledBack }); err != nil {
			set.Set(nil, err)
			return
		}
		if !r.live {
			set.Set(nil, nil)
			return
		}
		r.tracker.SetVolume(m.VolumeID, func(v *VolumeProgress) {
			v.State, v.Message = StepRunning, "snapshot "+snap.ID+" completed: its volume in "+r.plan.TargetZone
		})
		if err := r.restoreOnNewFileServer(ctx, m, snap); err != nil {
			set.Set(nil, err)
			return
		}
		now := workflow.Now(ctx)
		actual := r.cloudSeconds(now.Sub(started))
		r.res.Deferred = append(r.res.Deferred, DeferredVolume{VolumeID: m.VolumeID, Kind: string(m.Kind), Target: r.moved[m.VolumeID],
			CompletedAt: &now, PredictedSeconds: m.AfterSeconds, ActualSeconds: actual})
		r.res.Volumes[m.VolumeID] = r.moved[m.VolumeID]
		r.tracker.SetVolume(m.VolumeID, func(v *VolumeProgress) {
			v.State, v.Finished, v.Actual, v.ETA = StepDone, &now, actual, nil
			v.Message = fmt.Sprintf("attached to %s as %s after %.0f s (predicted %.0f s)", r.newFile.Name, r.moved[m.VolumeID], actual, m.AfterSeconds)
		})
		set.Set(nil, nil)
	})
	return f
}

// afterLive waits for the deferred volumes, keeps the old cluster as a standby for the
// retention period and then retires it.
func (r *release) afterLive(ctx workflow.Context) error {
	if len(r.deferred) == 0 {
		r.tracker.Skip(stepRelDeferred, "no deferrable volume")
	} else {
		r.tracker.Start(stepRelDeferred, fmt.Sprintf("%d volumes follow in the background (Status shows their progress and ETA)", len(r.deferred)))
		var errs []string
		for _, f := range r.deferred {
			if err := f.Get(ctx, nil); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return atStep(stepRelDeferred, fmt.Errorf("deferred volumes: %s", strings.Join(errs, "; ")))
		}
		var done []string
		for _, d := range r.res.Deferred {
			done = append(done, fmt.Sprintf("%s (%s) as %s after %.0f s", d.VolumeID, d.Kind, d.Target, d.ActualSeconds))
		}
		r.tracker.Done(stepRelDeferred, "attached to "+r.newFile.Name+": "+strings.Join(done, ", "))
	}
	r.tracker.Start(stepRelRetention, fmt.Sprintf("%s stays a standby until %s (retention %s)", r.in.Cluster,
		workflow.Now(ctx).Add(r.policy.Retention).UTC().Format("2006-01-02 15:04 MST"), r.policy.Retention))
	// The retention is the cloud's time, as every duration of the policy: a drill's cloudsim
	// at speed 10 keeps the standby for a tenth of it in the worker's.
	if err := workflow.Sleep(ctx, r.workerDuration(r.policy.Retention.Seconds())); err != nil {
		return atStep(stepRelRetention, err)
	}
	r.tracker.Done(stepRelRetention, "the retention period is over")
	return r.retireOld(ctx)
}

// retireOld takes the old file server out of every resource, records the old cluster retired
// and terminates its servers; their volumes are kept (deleting them is a separate decision). It
// records the cluster retired first, so TerminateInstance's live-cluster interlock lets it pass.
func (r *release) retireOld(ctx workflow.Context) error {
	r.tracker.Start(stepRelRetire, "retiring "+r.in.Cluster)
	if err := r.dropNode(ctx, r.fileServer.InstanceID, r.fileServer.PrivateIP); err != nil {
		return atStep(stepRelRetire, err)
	}
	rec := activities.FleetRecord{Clusters: []activities.PlannedCluster{{Name: r.in.Cluster, Zone: r.plan.Zone, Release: r.facts.Inventory.Release, State: anyops.ClusterRetired}}}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return atStep(stepRelRetire, err)
	}
	n := 0
	for _, s := range r.facts.Inventory.Servers {
		if s.Cluster != r.in.Cluster || s.InstanceID == "" || s.State == anyops.ServerTerminated {
			continue
		}
		if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.TerminateInstance, activities.TerminateInstanceInput{InstanceID: s.InstanceID}).Get(ctx, nil); err != nil {
			return atStep(stepRelRetire, err)
		}
		if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.SetServerState, activities.SetServerStateInput{Server: s.Name, State: anyops.ServerTerminated}).Get(ctx, nil); err != nil {
			return atStep(stepRelRetire, err)
		}
		n++
	}
	now := workflow.Now(ctx)
	r.res.RetiredAt = &now
	r.audit(ctx, "release.retired", map[string]any{"servers": n})
	r.tracker.Done(stepRelRetire, fmt.Sprintf("%s retired: %d servers terminated, their volumes kept", r.in.Cluster, n))
	return nil
}
