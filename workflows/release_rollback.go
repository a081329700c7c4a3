package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// The rollback of a release: the old cluster serves again and the new one is retired.

// rollback brings the old cluster back: the names pointed at the old file server again, the
// new file server stops serving, the old one is made Primary (it stayed a connected
// Secondary, so it has every write), assembles, mounts and exports, its clients are remounted;
// the handed-over volumes go back to the backup, the new backup leaves the resources and the
// new cluster is retired and its servers terminated (their volumes kept).
func (r *release) rollback(ctx workflow.Context, rb *rollbackNeeded) (ReleaseResult, error) {
	r.res.Outcome, r.res.RollbackReason = ReleaseRolledBack, rb.reason
	r.tracker.Start(stepRelRollback, "rolling back: "+rb.reason)
	r.event("rolling back: %s", rb.reason)
	if err := r.restoreOld(ctx); err != nil {
		return r.fail(ctx, stepRelRollback, fmt.Errorf("rollback (%s): %w", rb.reason, err))
	}
	if err := r.retireNew(ctx); err != nil {
		return r.fail(ctx, stepRelRollback, fmt.Errorf("rollback (%s), retiring %s: %w", rb.reason, r.res.NewCluster, err))
	}
	r.tracker.Done(stepRelRollback, fmt.Sprintf("%s serves again from %s; %s retired", r.in.Cluster, r.fileServer.Name, r.res.NewCluster))
	r.skipPending("rolled back")
	r.res.FileServer, r.res.Backup = r.fileServer.Name, r.backup.Name
	r.res.Overrides = r.locks.given
	r.audit(ctx, "release.rolled-back", map[string]any{"reason": rb.reason})
	msg := fmt.Sprintf("rolled back: %s; %s serves from %s", rb.reason, r.in.Cluster, r.fileServer.Name)
	if r.res.MaintenanceAt != nil && r.res.LiveAt != nil {
		msg += fmt.Sprintf(" after %.0f s", r.cloudSeconds(r.res.LiveAt.Sub(*r.res.MaintenanceAt)))
	}
	r.tracker.Finish(msg)
	return r.res, nil
}

// restoreOld makes the old cluster serve as before the window, undoing what the cutover did
// in reverse; every step looks first.
func (r *release) restoreOld(ctx workflow.Context) error {
	hc := r.hostCtx(ctx)
	if r.maintenanceStarted() && r.newFile.InstanceID != "" && r.serving {
		nf := r.newFile.InstanceID
		if err := workflow.ExecuteActivity(hc, recHosts.UnexportNFS, activities.NFSExportInput{InstanceID: nf, Path: homeArray.mountPoint, Clients: demoNFSClients}).Get(ctx, nil); err != nil {
			return err
		}
		if err := workflow.ExecuteActivity(hc, recHosts.Umount, activities.UmountInput{InstanceID: nf, MountPoint: homeArray.mountPoint}).Get(ctx, nil); err != nil {
			return err
		}
		if err := workflow.ExecuteActivity(hc, recHosts.StopRAID, activities.StopRAIDInput{InstanceID: nf, Device: homeArray.device}).Get(ctx, nil); err != nil {
			return err
		}
		if err := together(ctx, r.layouts, func(l SeedResource) string { return l.Name }, func(l SeedResource) workflow.Future {
			return workflow.ExecuteActivity(hc, recHosts.DRBDSecondary, activities.DRBDResourceInput{InstanceID: nf, Resource: l.Name})
		}, nil); err != nil {
			return err
		}
		r.event("%s stopped serving", r.newFile.Name)
	}
	if !r.maintenanceStarted() {
		return nil
	}
	fs := r.fileServer
	var names, members []string
	for _, l := range r.layouts {
		names = append(names, l.Name)
		members = append(members, fmt.Sprintf("/dev/drbd%d", l.Minor))
	}
	if err := r.locks.pass(ctx, "promoting "+fs.Name+" back", func(ov *activities.Override) error {
		return workflow.ExecuteActivity(hc, recHosts.DRBDPromote, activities.DRBDPromoteInput{InstanceID: fs.InstanceID, Resources: names, Override: ov}).Get(ctx, nil)
	}); err != nil {
		return err
	}
	if err := workflow.ExecuteActivity(hc, recHosts.AssembleRAID, activities.AssembleRAIDInput{InstanceID: fs.InstanceID, Device: homeArray.device, Members: members}).Get(ctx, nil); err != nil {
		return err
	}
	if err := exportArray(hc, ctx, fs.InstanceID, homeArray, false); err != nil {
		return err
	}
	mounts := r.extraMounts()
	for _, id := range sortedKeys(mounts) {
		hm := mounts[id]
		if _, moved := r.moved[id]; moved {
			continue // it comes back below
		}
		if err := workflow.ExecuteActivity(hc, recHosts.Mount, activities.MountInput{InstanceID: fs.InstanceID, Device: hm.Device, MountPoint: hm.MountPoint, FSType: hm.FSType}).Get(ctx, nil); err != nil {
			return err
		}
	}
	// The plain volumes handed over come back to the old file server.
	for _, m := range r.inZoneMoves() {
		if _, moved := r.moved[m.VolumeID]; !moved {
			continue
		}
		if hm, ok := mounts[m.VolumeID]; ok {
			if err := workflow.ExecuteActivity(hc, recHosts.Umount, activities.UmountInput{InstanceID: r.newFile.InstanceID, MountPoint: hm.MountPoint}).Get(ctx, nil); err != nil {
				return err
			}
		}
		if err := r.moveVolume(ctx, m, r.newFileInfo(), fs); err != nil {
			return err
		}
		delete(r.moved, m.VolumeID)
	}
	r.event("%s serves again", fs.Name)
	if r.namesMoved {
		if err := r.pointOldName(ctx, fs.PrivateIP); err != nil {
			return err
		}
	}
	var failed []string
	_ = together(ctx, r.clients, func(c activities.ServerInfo) string { return c.Name }, func(c activities.ServerInfo) workflow.Future {
		f, set := workflow.NewFuture(ctx)
		workflow.Go(ctx, func(ctx workflow.Context) {
			if _, err := remountClient(ctx, r.nfsCtx(ctx), r.hostCtx(ctx), r.timing.RecoveryTiming, c.InstanceID, c.Name, r.in.Cluster, fs.PrivateIP); err != nil {
				failed = append(failed, c.Name+": "+err.Error())
			}
			set.Set(nil, nil)
		})
		return f
	}, nil)
	now := workflow.Now(ctx)
	r.res.LiveAt = &now
	r.res.DowntimeSeconds = r.cloudSeconds(now.Sub(*r.res.MaintenanceAt))
	msg := fmt.Sprintf("%d clients back on %s", len(r.clients)-len(failed), fs.Name)
	if len(failed) > 0 {
		msg += "; not remounted: " + strings.Join(failed, "; ")
	}
	r.event("%s", msg)
	// The old file server serves again: its alarms are faults again.
	if err := r.hold(ctx); err != nil {
		return err
	}
	// The handed-over volumes go back to the backup, which takes its node id again.
	if r.handedOver {
		nf := r.newFileInfo()
		var host string
		if err := workflow.ExecuteActivity(hc, recHosts.HostName, activities.InstanceRef{InstanceID: r.backup.InstanceID}).Get(ctx, &host); err != nil {
			return err
		}
		back := make([]SeedResource, len(r.layouts))
		for i, l := range r.layouts {
			l.Nodes = slices.Clone(l.Nodes)
			for j, n := range l.Nodes {
				if n.Node.NodeID == l.SourceNodeID {
					l.Nodes[j].InstanceID = nf.InstanceID
				}
			}
			back[i] = l
		}
		if err := together(ctx, back, func(l SeedResource) string { return l.Name }, func(l SeedResource) workflow.Future {
			f, set := workflow.NewFuture(ctx)
			workflow.Go(ctx, func(ctx workflow.Context) { set.Set(nil, r.moveNode(ctx, l, nf, r.backup, host)) })
			return f
		}, nil); err != nil {
			return err
		}
		r.event("the volumes are %s's again", r.backup.Name)
	}
	return nil
}

// retireNew takes the new backup out of the resources and retires the new cluster: its
// servers terminated (now allowed: the cluster is retired), their data volumes kept.
func (r *release) retireNew(ctx workflow.Context) error {
	if r.seeded {
		if err := r.dropNode(ctx, r.newBackup.InstanceID, r.newBackup.PrivateIP); err != nil {
			return err
		}
		r.seeded = false
	}
	rec := activities.FleetRecord{Clusters: []activities.PlannedCluster{{Name: r.res.NewCluster, Zone: r.plan.TargetZone, Release: r.in.Version, State: anyops.ClusterRetired}}}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return err
	}
	var names []string
	for n := range r.built {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.TerminateInstance, activities.TerminateInstanceInput{InstanceID: r.built[n].InstanceID}).Get(ctx, nil); err != nil {
			return err
		}
		if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.SetServerState, activities.SetServerStateInput{Server: n, State: anyops.ServerTerminated}).Get(ctx, nil); err != nil {
			return err
		}
	}
	r.event("%s retired, %d servers terminated", r.res.NewCluster, len(names))
	return nil
}

// dropNode takes the node at address out of every resource: down there (its file removed),
// and every other node's file written without it.
func (r *release) dropNode(ctx workflow.Context, instance, address string) error {
	hc := r.hostCtx(ctx)
	var files []nodeFile
	for _, l := range r.layouts {
		id := -1
		for _, n := range l.Nodes {
			if n.Node.Address == address {
				id = n.Node.NodeID
			}
		}
		if id < 0 {
			continue
		}
		conf := l.config(-2, activities.DRBDNode{}, id)
		for _, n := range conf.Nodes {
			files = append(files, nodeFile{r.instanceAt(l, n.Address), conf})
		}
	}
	if err := together(ctx, r.layouts, func(l SeedResource) string { return l.Name }, func(l SeedResource) workflow.Future {
		return workflow.ExecuteActivity(hc, recHosts.DRBDRemove, activities.DRBDResourceInput{InstanceID: instance, Resource: l.Name})
	}, nil); err != nil {
		return err
	}
	return together(ctx, files, func(n nodeFile) string { return n.conf.Name + " on " + n.instance }, func(n nodeFile) workflow.Future {
		return workflow.ExecuteActivity(hc, recHosts.ConfigureDRBD, activities.ConfigureDRBDInput{InstanceID: n.instance, Resource: n.conf})
	}, nil)
}

// instanceAt is the instance of the release's servers with that address now.
func (r *release) instanceAt(l SeedResource, address string) string {
	for _, s := range []activities.ServerInfo{r.fileServer, r.backup, r.newFileInfo(),
		{InstanceID: r.newBackup.InstanceID, PrivateIP: r.newBackup.PrivateIP}} {
		if s.PrivateIP == address {
			return s.InstanceID
		}
	}
	for _, n := range l.Nodes {
		if n.Node.Address == address {
			return n.InstanceID
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
