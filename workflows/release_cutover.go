package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// The cutover of a release: the window in which nothing serves. Before it opens the new
// cluster is checked and every critical volume's copy in the target zone is verified (the
// no-copy-in-target interlock). Then the old file server stops serving; the DRBD resources are
// checked in sync; the last incrementals of the critical unreplicated volumes become volumes
// in the target zone while the backup's volumes are handed to the new file server, which
// joins every resource in the backup's place (its node id), is made Primary and serves; the
// file service's names move and every client is checked. The old file server stays a
// connected Secondary of every resource throughout, so until the new cluster is declared
// live — the point of no return — a rollback loses nothing.

// rollbackNeeded is why a cutover rolls back.
type rollbackNeeded struct {
	reason string
	err    error
}

func (e *rollbackNeeded) Error() string { return "rollback: " + e.reason }
func (e *rollbackNeeded) Unwrap() error { return e.err }

func rollBack(reason string, err error) error {
	if err != nil {
		reason += ": " + err.Error()
	}
	return &rollbackNeeded{reason: reason, err: err}
}

// homeArray is the file system every live-shape file server serves: md0 over its DRBD
// devices, at /srv/home.
var homeArray = mdArray{device: "/dev/md0", mountPoint: "/srv/home"}

// nodeRole says which server a resource's node is.
func (r *release) layoutOf(ctx workflow.Context) error {
	var resources []string
	for _, m := range r.plan.Volumes {
		if m.Resource != "" && m.Way == anyops.WayReplica {
			resources = append(resources, m.Resource)
		}
	}
	slices.Sort(resources)
	r.layouts = nil
	for _, name := range resources {
		var conf activities.DRBDResourceConfig
		if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.DRBDConfigOf, activities.DRBDResourceInput{InstanceID: r.fileServer.InstanceID, Resource: name}).Get(ctx, &conf); err != nil {
			return fmt.Errorf("%s on %s: %w", name, r.fileServer.Name, err)
		}
		s := SeedResource{Name: conf.Name, Minor: conf.Minor, Port: conf.Port, SourceNodeID: -1}
		for _, n := range conf.Nodes {
			node := SeedNode{Node: n}
			switch n.Address {
			case r.fileServer.PrivateIP:
				node.InstanceID, node.Primary = r.fileServer.InstanceID, true
			case r.backup.PrivateIP:
				node.InstanceID, s.SourceNodeID = r.backup.InstanceID, n.NodeID
			case r.newBackup.PrivateIP:
				node.InstanceID = r.newBackup.InstanceID
			case r.newFile.PrivateIP:
				node.InstanceID, s.SourceNodeID = r.newFile.InstanceID, n.NodeID // a handover under way, looked at again
			default:
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s has a node %s (%s) that is none of the release's servers", conf.Name, n.Hostname, n.Address), activities.ErrInvalidInput, nil)
			}
			s.Nodes = append(s.Nodes, node)
		}
		if s.SourceNodeID < 0 {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s's file on %s names no node of %s", conf.Name, r.fileServer.Name, r.backup.Name), activities.ErrInvalidInput, nil)
		}
		for _, m := range r.plan.Volumes {
			if m.Resource == name && m.Replica != "" {
				s.Source = m.Replica
			}
		}
		r.layouts = append(r.layouts, s)
	}
	return nil
}

// config is a resource's file with the handed-over node (the backup's node id) on host.
func (s SeedResource) config(id int, host activities.DRBDNode, without int) activities.DRBDResourceConfig {
	c := activities.DRBDResourceConfig{Name: s.Name, Minor: s.Minor, Port: s.Port}
	for _, n := range s.Nodes {
		switch {
		case n.Node.NodeID == without:
		case n.Node.NodeID == id:
			c.Nodes = append(c.Nodes, host)
		default:
			c.Nodes = append(c.Nodes, n.Node)
		}
	}
	slices.SortFunc(c.Nodes, func(a, b activities.DRBDNode) int { return a.NodeID - b.NodeID })
	return c
}

func (s SeedResource) node(id int) activities.DRBDNode {
	for _, n := range s.Nodes {
		if n.Node.NodeID == id {
			return n.Node
		}
	}
	return activities.DRBDNode{NodeID: id}
}

func (r *release) cutover(ctx workflow.Context) error {
	if err := r.layoutOf(ctx); err != nil {
		return atStep(stepRelCheckNew, err)
	}
	if err := r.checkNewCluster(ctx); err != nil {
		return err
	}
	if err := r.checkCopies(ctx); err != nil {
		return err
	}
	if err := r.maintenance(ctx); err != nil {
		return rollBack("maintenance", err)
	}
	if err := r.checkInSync(ctx); err != nil {
		return rollBack("the resources are not in sync", err)
	}
	finals := r.startFinalSnapshots(ctx)
	if err := r.handover(ctx); err != nil {
		return rollBack("the handover", err)
	}
	if err := r.serve(ctx); err != nil {
		return rollBack("the new file server", err)
	}
	if err := finals.Get(ctx, nil); err != nil {
		return rollBack("the final snapshots", err)
	}
	if err := r.moveNames(ctx); err != nil {
		return rollBack("the names", err)
	}
	if err := r.switchClients(ctx); err != nil {
		return err
	}
	return r.declareLive(ctx)
}

// checkNewCluster is the new cluster's health check before the window: every server running
// with its status checks passing and its host answering. One that fails rolls back before
// anything stopped serving.
func (r *release) checkNewCluster(ctx workflow.Context) error {
	r.tracker.Start(stepRelCheckNew, fmt.Sprintf("checking %d servers of %s", len(r.built), r.res.NewCluster))
	var names []string
	for n := range r.built {
		names = append(names, n)
	}
	slices.Sort(names)
	var bad []string
	for _, n := range names {
		b := r.built[n]
		var h activities.InstanceHealth
		if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.InstanceStatus, activities.InstanceRef{InstanceID: b.InstanceID}).Get(ctx, &h); err != nil {
			return atStep(stepRelCheckNew, err)
		}
		if h.State != "running" || h.Impaired() {
			bad = append(bad, fmt.Sprintf("%s is %s (system %s, instance %s)", n, h.State, h.SystemStatus, h.InstanceStatus))
			continue
		}
		var p activities.HostProbe
		if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.ProbeHost, activities.InstanceRef{InstanceID: b.InstanceID}).Get(ctx, &p); err != nil {
			return atStep(stepRelCheckNew, err)
		}
		if !p.Reachable {
			bad = append(bad, n+" does not answer: "+p.Detail)
		}
	}
	if len(bad) > 0 {
		err := errors.New(strings.Join(bad, "; "))
		r.tracker.Fail(stepRelCheckNew, err)
		return rollBack("the new cluster failed its health checks", err)
	}
	r.tracker.Done(stepRelCheckNew, fmt.Sprintf("%d servers running, checks passing, hosts answering", len(names)))
	return nil
}

// missingCopies lists the critical volumes that have no verified copy in the target zone now:
// a handed-over resource whose backup in the target zone is not a connected UpToDate peer on
// the file server, a volume moved by snapshot with no completed snapshot.
func (r *release) missingCopies(ctx workflow.Context) ([]string, error) {
	var st activities.DRBDStatusOutput
	if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.DRBDStatus, activities.DRBDStatusInput{InstanceID: r.fileServer.InstanceID}).Get(ctx, &st); err != nil {
		return nil, err
	}
	var missing []string
	for _, l := range r.layouts {
		host := l.node(l.SourceNodeID).Hostname
		i := slices.IndexFunc(st.Resources, func(x activities.DRBDResource) bool { return x.Name == l.Name })
		ok := i >= 0 && slices.ContainsFunc(st.Resources[i].Peers, func(p activities.DRBDPeer) bool {
			return p.Name == host && p.Connection == "Connected" && p.PeerDisk == "UpToDate"
		})
		if !ok || r.backup.Zone != r.plan.TargetZone {
			missing = append(missing, fmt.Sprintf("%s: its replica on %s is not a connected UpToDate copy in %s", l.Name, r.backup.Name, r.plan.TargetZone))
		}
	}
	for _, m := range r.snapshotMoves(false) {
		if s, ok := r.snapshots[m.VolumeID]; !ok || s.State != "completed" {
			missing = append(missing, fmt.Sprintf("%s (%s): no completed snapshot yet", m.VolumeID, m.Kind))
		}
	}
	return missing, nil
}

// checkCopies is the no-copy-in-target interlock: no window opens while a critical volume
// lacks a verified copy in the target zone; it waits (looking again every PlanInterval), and
// only an audited override passes it — the volumes without a copy then move after the cutover
// like deferrable ones.
func (r *release) checkCopies(ctx workflow.Context) error {
	r.tracker.Start(stepRelCopies, "verifying every critical volume's copy in "+r.plan.TargetZone)
	for {
		missing, err := r.missingCopies(ctx)
		if err != nil {
			return atStep(stepRelCopies, err)
		}
		if len(missing) == 0 {
			break
		}
		fired := false
		workflow.Go(ctx, func(ctx workflow.Context) {
			_ = workflow.Sleep(ctx, r.timing.PlanInterval)
			fired = true
		})
		ov, err := r.locks.await(ctx, anyops.InterlockNoCopyInTarget, "the cutover: "+strings.Join(missing, "; "), func() bool { return fired })
		if err != nil {
			return atStep(stepRelCopies, err)
		}
		if ov != nil {
			r.audit(ctx, "release.override", map[string]any{"interlock": string(anyops.InterlockNoCopyInTarget), "by": ov.By, "reason": ov.Reason, "missing": missing})
			r.overrideCopies = true
			r.tracker.Done(stepRelCopies, "OVERRIDDEN by "+ov.By+": "+strings.Join(missing, "; ")+" (they follow after the cutover)")
			return nil
		}
	}
	r.tracker.Done(stepRelCopies, fmt.Sprintf("%d resources UpToDate on %s in %s; %d volumes snapshotted", len(r.layouts), r.backup.Name, r.plan.TargetZone, len(r.snapshotMoves(false))))
	return nil
}

// extraMounts are the old file server's mounts of plain volumes (logs, Dropbox), by volume.
func (r *release) extraMounts() map[string]activities.HostMount {
	out := map[string]activities.HostMount{}
	for _, m := range r.plan.Volumes {
		if m.Server != r.fileServer.Name || m.Resource != "" || m.Way == anyops.WayStays {
			continue
		}
		mp := "/srv/" + string(m.Kind)
		for _, hm := range r.facts.Mounts {
			if hm.MountPoint == mp {
				out[m.VolumeID] = hm
			}
		}
	}
	return out
}

// maintenance stops the old file server serving: the export withdrawn, the home file system
// unmounted, md0 stopped, every resource Secondary, the logs and Dropbox file systems
// unmounted. From here the data holds still.
func (r *release) maintenance(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	r.res.MaintenanceAt = &now
	fs := r.fileServer.InstanceID
	r.tracker.Start(stepRelMaintenance, fmt.Sprintf("%s stops serving: the window opens", r.fileServer.Name))
	// Held before it stops serving: its NFS watch sees the export go, and that is planned.
	r.holds = workflow.GetVersion(ctx, changeMaintenanceHold, workflow.DefaultVersion, 1) == 1
	if err := r.hold(ctx, r.fileServer.Name); err != nil {
		return atStep(stepRelMaintenance, err)
	}
	r.audit(ctx, "release.maintenance", map[string]any{"file_server": r.fileServer.Name, "plan": r.plan.Hash, "predicted_downtime_seconds": r.plan.PredictedDowntimeSeconds})
	hc := r.hostCtx(ctx)
	if err := workflow.ExecuteActivity(hc, recHosts.UnexportNFS, activities.NFSExportInput{InstanceID: fs, Path: homeArray.mountPoint, Clients: demoNFSClients}).Get(ctx, nil); err != nil {
		return atStep(stepRelMaintenance, err)
	}
	var res activities.CommandResult
	if err := workflow.ExecuteActivity(hc, recHosts.Umount, activities.UmountInput{InstanceID: fs, MountPoint: homeArray.mountPoint}).Get(ctx, &res); err != nil {
		return atStep(stepRelMaintenance, err)
	}
	r.stoppedAt = res.EndedAt
	if err := workflow.ExecuteActivity(hc, recHosts.StopRAID, activities.StopRAIDInput{InstanceID: fs, Device: homeArray.device}).Get(ctx, nil); err != nil {
		return atStep(stepRelMaintenance, err)
	}
	if err := together(ctx, r.layouts, func(l SeedResource) string { return l.Name }, func(l SeedResource) workflow.Future {
		return workflow.ExecuteActivity(hc, recHosts.DRBDSecondary, activities.DRBDResourceInput{InstanceID: fs, Resource: l.Name})
	}, nil); err != nil {
		return atStep(stepRelMaintenance, err)
	}
	mounts := r.extraMounts()
	for _, id := range sortedKeys(mounts) {
		if err := workflow.ExecuteActivity(hc, recHosts.Umount, activities.UmountInput{InstanceID: fs, MountPoint: mounts[id].MountPoint}).Get(ctx, &res); err != nil {
			return atStep(stepRelMaintenance, err)
		}
		if res.EndedAt.After(r.stoppedAt) {
			r.stoppedAt = res.EndedAt
		}
	}
	// The deferrable volumes' snapshots start now, from data that holds still; they run on
	// past the window.
	for _, m := range r.deferredMoves() {
		r.deferred = append(r.deferred, r.startDeferred(ctx, m))
	}
	r.tracker.Done(stepRelMaintenance, fmt.Sprintf("%s no longer serves: unexported, unmounted, md0 stopped, %d resources Secondary", r.fileServer.Name, len(r.layouts)))
	return nil
}

// checkInSync waits until every resource is UpToDate on the old file server with every
// connected peer UpToDate too: the last writes have reached the copies.
func (r *release) checkInSync(ctx workflow.Context) error {
	r.tracker.Start(stepRelInSync, "checking every resource in sync on "+r.fileServer.Name)
	names, err := r.waitResourcesUpToDate(ctx, r.fileServer.InstanceID)
	if err != nil {
		return atStep(stepRelInSync, err)
	}
	if missing, err := r.missingCopies(ctx); err != nil || (len(missing) > 0 && !r.overrideCopies) {
		if err == nil {
			err = errors.New(strings.Join(missing, "; "))
		}
		return atStep(stepRelInSync, err)
	}
	r.tracker.Done(stepRelInSync, fmt.Sprintf("%d resources UpToDate with their peers", len(names)))
	return nil
}

// startFinalSnapshots takes, in the window, the last incremental of each critical volume that
// moves by snapshot, creates its volume in the target zone and attaches and mounts it on the
// new file server, all at once, in the background of the handover.
func (r *release) startFinalSnapshots(ctx workflow.Context) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	var moves []VolumeMove
	for _, m := range r.snapshotMoves(false) {
		if _, ok := r.snapshots[m.VolumeID]; ok || !r.overrideCopies {
			moves = append(moves, m)
		} else {
			// Overridden: no copy yet; it moves after the cutover.
			r.deferred = append(r.deferred, r.startDeferred(ctx, m))
		}
	}
	if len(moves) == 0 {
		r.tracker.Skip(stepRelFinalSnaps, "no critical volume moves by snapshot")
		set.Set(nil, nil)
		return f
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		r.tracker.Start(stepRelFinalSnaps, fmt.Sprintf("the last incrementals of %d volumes, and their volumes in %s", len(moves), r.plan.TargetZone))
		err := together(ctx, moves, func(m VolumeMove) string { return m.VolumeID }, func(m VolumeMove) workflow.Future {
			f, set := workflow.NewFuture(ctx)
			workflow.Go(ctx, func(ctx workflow.Context) {
				snap, err := r.snapshot(ctx, m, "final", m.WindowSeconds)
				if err == nil {
					r.snapshots[m.VolumeID] = snap
					err = r.restoreOnNewFileServer(ctx, m, snap)
				}
				set.Set(nil, err)
			})
			return f
		}, nil)
		if err == nil {
			r.tracker.Done(stepRelFinalSnaps, fmt.Sprintf("%d volumes restored in %s and mounted on %s", len(moves), r.plan.TargetZone, r.newFile.Name))
		}
		set.Set(nil, atStep(stepRelFinalSnaps, err))
	})
	return f
}

// moveNames points the new cluster's file service name at the new file server (its zone made
// once) and moves the old cluster's name there too, both INSYNC.
func (r *release) moveNames(ctx workflow.Context) error {
	ip := r.newFile.PrivateIP
	r.tracker.Start(stepRelNames, fmt.Sprintf("pointing %s and %s at %s", anyops.FileServiceName(r.res.NewCluster), anyops.FileServiceName(r.in.Cluster), ip))
	r.namesMoved = true
	f, set := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		id, err := pointFileService(ctx, r.callCtx(ctx), r.timing.RecoveryTiming, r.scope, r.res.NewCluster, r.newFile.VPCID, ip)
		r.newZoneID = id
		set.Set(nil, err)
	})
	if err := r.pointOldName(ctx, ip); err != nil {
		return atStep(stepRelNames, err)
	}
	if err := f.Get(ctx, nil); err != nil {
		return atStep(stepRelNames, err)
	}
	r.tracker.Done(stepRelNames, fmt.Sprintf("%s and %s are %s, INSYNC", anyops.FileServiceName(r.res.NewCluster), anyops.FileServiceName(r.in.Cluster), ip))
	return nil
}

// pointOldName points the old cluster's file service name at ip and waits until INSYNC.
func (r *release) pointOldName(ctx workflow.Context, ip string) error {
	if r.oldZoneID == "" {
		var zone activities.HostedZone
		if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.ZoneByName, activities.ZoneByNameInput{Name: anyops.FileServiceZone(r.in.Cluster)}).Get(ctx, &zone); err != nil {
			return err
		}
		r.oldZoneID = zone.ID
	}
	change, err := switchFileService(ctx, r.callCtx(ctx), r.oldZoneID, r.in.Cluster, ip)
	if err != nil {
		return err
	}
	return workflow.ExecuteActivity(r.waitCtx(ctx, r.timing.DNSTimeout), recCloud.WaitRecordInSync,
		activities.WaitRecordInput{ChangeID: change.ChangeID, PollInterval: r.timing.PollInterval}).Get(ctx, nil)
}

func (r *release) nfsCtx(ctx workflow.Context) workflow.Context {
	o := r.timing.longHostOptions(r.timing.ClientTimeout)
	o.RetryPolicy = r.timing.retryPolicy()
	return workflow.WithActivityOptions(ctx, o)
}

// switchClients mounts the new cluster's clients on its file service and checks each reads
// and writes — the new cluster's health check: one that fails rolls back — and remounts the
// old cluster's clients on the new file server too (they are standby; one that fails is noted).
func (r *release) switchClients(ctx workflow.Context) error {
	ip := r.newFile.PrivateIP
	type client struct {
		instance, name, cluster string
		isNew                   bool
	}
	var clients []client
	var names []string
	for n := range r.built {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if b := r.built[n]; isClientRole(b.Role) {
			clients = append(clients, client{b.InstanceID, n, r.res.NewCluster, true})
		}
	}
	for _, c := range r.clients {
		clients = append(clients, client{c.InstanceID, c.Name, r.in.Cluster, false})
	}
	r.tracker.Start(stepRelClients, fmt.Sprintf("mounting %d clients on %s and checking they read and write", len(clients), r.newFile.Name))
	var failedNew, failedOld []string
	_ = together(ctx, clients, func(c client) string { return c.name }, func(c client) workflow.Future {
		f, set := workflow.NewFuture(ctx)
		workflow.Go(ctx, func(ctx workflow.Context) {
			// A client that fails is a result, not an error: every client is tried.
			if _, err := remountClient(ctx, r.nfsCtx(ctx), r.hostCtx(ctx), r.timing.RecoveryTiming, c.instance, c.name, c.cluster, ip); err != nil {
				if c.isNew {
					failedNew = append(failedNew, c.name+": "+err.Error())
				} else {
					failedOld = append(failedOld, c.name+": "+err.Error())
				}
			}
			set.Set(nil, nil)
		})
		return f
	}, nil)
	if len(failedNew) > 0 {
		err := errors.New(strings.Join(failedNew, "; "))
		r.tracker.Fail(stepRelClients, err)
		return rollBack("the new cluster failed its health checks", err)
	}
	now := workflow.Now(ctx)
	r.res.LiveAt = &now
	r.res.DowntimeSeconds = r.cloudSeconds(now.Sub(*r.res.MaintenanceAt))
	if r.res.DowntimeSeconds > 0 {
		r.res.ETAErrorPercent = 100 * abs(r.res.DowntimeSeconds-r.res.PredictedDowntimeSeconds) / r.res.DowntimeSeconds
	}
	msg := fmt.Sprintf("%d clients read and write on %s; downtime %.0f s (predicted %.0f s)", len(clients)-len(failedOld), r.newFile.Name,
		r.res.DowntimeSeconds, r.res.PredictedDowntimeSeconds)
	if len(failedOld) > 0 {
		msg += "; old clients not remounted: " + strings.Join(failedOld, "; ")
	}
	r.tracker.Done(stepRelClients, msg)
	return nil
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// declareLive records the new cluster live and the old one standby: the point of no return.
func (r *release) declareLive(ctx workflow.Context) error {
	r.tracker.Start(stepRelLive, "recording "+r.res.NewCluster+" live and "+r.in.Cluster+" standby")
	rec := activities.FleetRecord{Clusters: []activities.PlannedCluster{
		{Name: r.res.NewCluster, Zone: r.plan.TargetZone, Release: r.in.Version, State: anyops.ClusterLive},
		{Name: r.in.Cluster, Zone: r.plan.Zone, Release: r.facts.Inventory.Release, State: anyops.ClusterStandby},
	}}
	for _, l := range r.layouts {
		rec.Volumes = append(rec.Volumes, activities.VolumeRecord{VolumeID: l.Source, Kind: anyops.VolumeHome, Criticality: anyops.Critical,
			SizeGiB: r.sizeOf(l.Source), Zone: r.plan.TargetZone, Cluster: r.res.NewCluster, Server: r.newFile.Name, Device: r.deviceOf(l.Source), RAIDGroup: "md0", State: anyops.VolumeInUse})
		secondary := ""
		if r.seeded {
			secondary = r.newBackup.Volumes[l.Name]
		}
		rec.Replicas = append(rec.Replicas, activities.ReplicaRecord{Name: l.Name, Cluster: r.res.NewCluster, PrimaryServer: r.newFile.Name,
			SecondaryServer: r.newBackup.Name, PrimaryVolume: l.Source, SecondaryVolume: secondary})
	}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return atStep(stepRelLive, err)
	}
	// The handed-over volumes carry their new pair.
	var tagging []activities.TagResourceInput
	for _, l := range r.layouts {
		tagging = append(tagging, activities.TagResourceInput{ResourceID: l.Source, Tags: map[string]string{anyops.TagCluster: r.res.NewCluster,
			anyops.TagDRBDRole: activities.DRBDPrimary, anyops.TagDRBDPeer: r.newBackup.InstanceID}})
		if r.seeded {
			tagging = append(tagging, activities.TagResourceInput{ResourceID: r.newBackup.Volumes[l.Name], Tags: map[string]string{anyops.TagDRBDResource: l.Name,
				anyops.TagDRBDRole: activities.DRBDSecondary, anyops.TagDRBDPeer: r.newFile.InstanceID}})
		}
	}
	if err := together(ctx, tagging, func(t activities.TagResourceInput) string { return t.ResourceID }, func(t activities.TagResourceInput) workflow.Future {
		return workflow.ExecuteActivity(r.callCtx(ctx), recCloud.TagResource, t)
	}, nil); err != nil {
		return atStep(stepRelLive, err)
	}
	r.live = true
	// The old cluster is a standby until it is retired: none of its servers serves.
	if err := r.hold(ctx, r.oldClusterServers()...); err != nil {
		return atStep(stepRelLive, err)
	}
	r.res.FileServer, r.res.Backup = r.newFile.Name, r.newBackup.Name
	for old, nv := range r.moved {
		r.res.Volumes[old] = nv
	}
	r.audit(ctx, "release.live", map[string]any{"file_server": r.newFile.Name, "downtime_seconds": r.res.DowntimeSeconds,
		"predicted_downtime_seconds": r.res.PredictedDowntimeSeconds, "eta_error_percent": r.res.ETAErrorPercent, "plan": r.plan.Hash})
	r.tracker.Done(stepRelLive, fmt.Sprintf("%s is live in %s; %s is standby, %s a connected copy of every resource", r.res.NewCluster, r.plan.TargetZone, r.in.Cluster, r.fileServer.Name))
	return nil
}

func (r *release) sizeOf(volume string) int32 {
	for _, v := range r.facts.Cloud.Volumes {
		if v.ID == volume {
			return v.SizeGiB
		}
	}
	return 0
}
