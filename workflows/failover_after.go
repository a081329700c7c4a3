package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// What FileServerFailover does once a way serves: the clients switched to it, a hot backup
// restored, the inventory recorded.

// startSwitchName moves the file service's name to ip in the background, from the commit point
// on: Route 53 propagates the change (30 to 60 s) while the winner takes the data over. The
// future is the zone's id once the change is INSYNC. Before the winner serves, a client that
// resolved the name would find a server that does not serve yet — as the failed one does not —
// and none resolves it then: clients are remounted only once the winner serves.
func (w *failover) startSwitchName(ctx workflow.Context, ip string) workflow.Future {
	ctx = w.root
	done, settle := workflow.NewFuture(ctx)
	cluster := w.primary.Cluster
	workflow.Go(ctx, func(ctx workflow.Context) {
		callCtx := w.callCtx(ctx)
		var zone activities.HostedZone
		if err := workflow.ExecuteActivity(callCtx, recCloud.ZoneByName, activities.ZoneByNameInput{Name: anyops.FileServiceZone(cluster)}).Get(ctx, &zone); err != nil {
			settle.Set(nil, err)
			return
		}
		change, err := switchFileService(ctx, callCtx, zone.ID, cluster, ip)
		if err == nil {
			err = workflow.ExecuteActivity(w.waitCtx(ctx, w.timing.DNSTimeout), recCloud.WaitRecordInSync,
				activities.WaitRecordInput{ChangeID: change.ChangeID, PollInterval: w.timing.PollInterval}).Get(ctx, nil)
		}
		if err == nil {
			w.tracker.Event(fmt.Sprintf("%s points at %s, INSYNC", anyops.FileServiceName(cluster), ip))
		}
		settle.Set(zone.ID, err)
	})
	return done
}

// switchClients waits for the file service's name to be INSYNC on the winner, then remounts
// every client at once (the old mount detached: a stale hard mount cannot be unmounted
// otherwise; the name resolved afresh) and checks that each reads and writes its mount. A
// client that cannot be switched (it failed too: its own recovery replaces it) is recorded and
// does not hold the failover up.
func (w *failover) switchClients(ctx workflow.Context) error {
	ip := w.serving.PrivateIP
	clients := w.target.Clients
	w.tracker.Start(stepClients, fmt.Sprintf("moving %s to %s and remounting %d clients", anyops.FileServiceName(w.primary.Cluster), ip, len(clients)))
	var zoneID string
	if err := w.dns.Get(ctx, &zoneID); err != nil {
		return err
	}
	w.res.Clients = map[string]string{}
	var failed []string
	nfs := w.timing.longHostOptions(w.timing.ClientTimeout)
	nfs.RetryPolicy = w.timing.retryPolicy()
	nfsCtx := workflow.WithActivityOptions(ctx, nfs)
	_ = together(ctx, clients, func(c activities.ServerInfo) string { return c.Name }, func(c activities.ServerInfo) workflow.Future {
		done, settle := workflow.NewFuture(ctx)
		workflow.Go(ctx, func(ctx workflow.Context) {
			settle.Set(w.switchClient(ctx, nfsCtx, c, ip))
		})
		return done
	}, func(c activities.ServerInfo, f workflow.Future) error {
		var server string
		if err := f.Get(ctx, &server); err != nil {
			failed = append(failed, c.Name+": "+err.Error())
			return nil
		}
		w.res.Clients[c.Name] = server
		return nil
	})
	msg := fmt.Sprintf("%d of %d clients read and write %s on %s", len(w.res.Clients), len(clients), anyops.FileServiceExport, w.serving.Name)
	if len(failed) > 0 {
		msg += fmt.Sprintf("; not switched: %v", failed)
	}
	w.tracker.Done(stepClients, msg)
	w.event(ctx, "%s", msg)
	return nil
}

// switchClient remounts one client on ip and checks it until it reads and writes, within
// ClientTimeout; it returns the server the mount reaches.
func (w *failover) switchClient(ctx, nfsCtx workflow.Context, c activities.ServerInfo, ip string) (string, error) {
	var m activities.MountNFSOutput
	if err := workflow.ExecuteActivity(nfsCtx, recHosts.RemountNFS, activities.MountNFSInput{InstanceID: c.InstanceID,
		Source: anyops.FileServiceSource(w.primary.Cluster), ExpectedServer: ip, Timeout: w.timing.onHost(w.timing.ClientTimeout)}).Get(ctx, &m); err != nil {
		return "", err
	}
	deadline := workflow.Now(ctx).Add(w.timing.ClientTimeout)
	for {
		var h activities.MountHealth
		if err := workflow.ExecuteActivity(w.hostCtx(ctx), recHosts.CheckMount, activities.CheckMountInput{InstanceID: c.InstanceID}).Get(ctx, &h); err != nil {
			return "", err
		}
		if h.Serving && h.Mount.Server == ip {
			return h.Mount.Server, nil
		}
		if !workflow.Now(ctx).Before(deadline) {
			return "", fmt.Errorf("%s does not read and write its mount of %s: %s", c.Name, ip, h.Detail)
		}
		if err := workflow.Sleep(ctx, w.timing.PollInterval); err != nil {
			return "", err
		}
	}
}

// awaitWay waits for a losing way to end and records how; false when the way was not raced.
func (w *failover) awaitWay(ctx workflow.Context, way anyops.RecoveryWay) (wayOutcome, bool) {
	b := w.branch(way)
	if b == nil {
		return wayOutcome{}, false
	}
	var out wayOutcome
	err := b.done.Get(ctx, &out)
	if !b.ended {
		b.ended = true
		if err != nil {
			w.endBranch(way, err)
		} else {
			w.settled(ctx, way, out)
		}
	}
	return out, err == nil
}

// restoreRedundancy gives the data a hot backup again before the failover ends: the repaired
// old primary (which lost to the promoted backup and came back Secondary), or the old backup
// (which resyncs from the winner), or a new one (BackupRebuild, on the replace way's server
// when it is kept) — and waits until every resource is UpToDate on both sides. When that
// cannot be, the no-hot-backup interlock holds the failover until an override says to end
// without one; it never ends without saying so.
func (w *failover) restoreRedundancy(ctx workflow.Context) error {
	w.tracker.Start(stepRedundancy, "finding the new hot backup")
	backup, err := w.newBackup(ctx)
	if err == nil {
		err = w.waitHotBackup(ctx, backup)
	}
	// Every way ends before the failover does: a build still under way becomes the spare.
	for _, b := range w.branches {
		if !b.ended {
			w.awaitWay(ctx, b.way)
		}
	}
	w.keepSpare(ctx, backup)
	if err == nil {
		w.res.Backup = backup.Name
		red := w.tracker.Redundancy()
		w.tracker.Done(stepRedundancy, fmt.Sprintf("%s is the hot backup: every resource UpToDate on both sides after %.0f s without one", backup.Name, red.NoHotBackupSeconds))
		w.event(ctx, "hot backup restored on %s after %.0f s without one", backup.Name, red.NoHotBackupSeconds)
		return nil
	}
	if temporal.IsCanceledError(err) {
		return err
	}
	ov, err := w.locks.await(ctx, anyops.InterlockNoHotBackup, "ending the failover: no hot backup ("+err.Error()+")", nil)
	if err != nil {
		return err
	}
	d := ov
	w.res.WithoutHotBackup = true
	red := w.tracker.Redundancy()
	red.Message = fmt.Sprintf("ended WITHOUT a hot backup, by %s: %s", d.By, d.Reason)
	w.tracker.SetRedundancy(red)
	w.tracker.Done(stepRedundancy, red.Message)
	return nil
}

// newBackup chooses and sets up the server that becomes the hot backup.
func (w *failover) newBackup(ctx workflow.Context) (activities.ServerInfo, error) {
	failed := ""
	switch w.res.Winner {
	case anyops.WayPromote:
		if out, ok := w.awaitWay(ctx, anyops.WayRepair); ok && out.Keep == keepBackup {
			return out.Server, nil
		}
		failed = w.primary.Name
	default:
		if w.backupAnswers(ctx) {
			return *w.backup, nil
		}
		if w.backup == nil {
			return activities.ServerInfo{}, fmt.Errorf("the file server had no backup")
		}
		failed = w.backup.Name
	}
	onto := ""
	if out, ok := w.awaitWay(ctx, anyops.WayReplace); ok && out.Keep != "" {
		onto = out.Server.Name
		w.kept[anyops.WayReplace] = wayOutcome{Keep: keepBackup, Server: out.Server}
	}
	return w.rebuildBackup(ctx, failed, onto)
}

// backupAnswers says whether the old backup is there to resync from the winner.
func (w *failover) backupAnswers(ctx workflow.Context) bool {
	if w.backup == nil {
		return false
	}
	var probe activities.HostProbe
	err := workflow.ExecuteActivity(w.quickHostCtx(ctx), recHosts.ProbeHost, activities.InstanceRef{InstanceID: w.backup.InstanceID}).Get(ctx, &probe)
	return err == nil && probe.Reachable
}

// rebuildBackup records the serving side in the inventory and runs BackupRebuild for the side
// that failed, onto a server when one is kept (else it takes a spare or builds one).
func (w *failover) rebuildBackup(ctx workflow.Context, failed, onto string) (activities.ServerInfo, error) {
	if err := w.record(ctx); err != nil {
		return activities.ServerInfo{}, err
	}
	w.event(ctx, "rebuilding a backup in place of %s%s", failed, map[bool]string{true: " on " + onto, false: ""}[onto != ""])
	var res BackupRebuildResult
	err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: anyops.BackupRebuildWorkflowID(failed), WorkflowExecutionTimeout: w.timing.BuildTimeout + w.timing.SyncTimeout,
	}), BackupRebuildWorkflowType, BackupRebuildInput{
		RecoveryRequest: RecoveryRequest{Server: failed, IncidentID: w.in.IncidentID, RequestedBy: anyops.FailoverWorkflowID(w.in.Server)},
		Timing:          w.in.Timing, Policy: RebuildPolicy{Seed: w.policy.Seed, ImageID: w.policy.ImageID}, Onto: onto,
	}).Get(ctx, &res)
	if err != nil {
		return activities.ServerInfo{}, err
	}
	return res.Backup, nil
}

// waitHotBackup waits until every resource is in sync on the serving server, showing the
// resync's progress and when it should end, within SyncTimeout.
func (w *failover) waitHotBackup(ctx workflow.Context, backup activities.ServerInfo) error {
	var names []string
	for _, r := range w.resources {
		names = append(names, r.Name)
	}
	progress, err := waitInSync(ctx, w.timing, w.tracker, stepRedundancy, w.serving.InstanceID, names, backup.Name)
	if err != nil {
		return err
	}
	now := workflow.Now(ctx)
	red := w.tracker.Redundancy()
	red.HotBackup, red.Backup, red.RestoredAt = true, backup.Name, &now
	red.Message = fmt.Sprintf("every resource UpToDate on %s and %s (%d polls)", w.serving.Name, backup.Name, progress.Polls)
	w.tracker.SetRedundancy(red)
	return nil
}

// waitInSync asks the primary's host in chunks (each a WaitDRBDInSync of up to 60 polls) until
// every resource is in sync, within SyncTimeout, and shows each chunk's progress, with the
// time it should end at the rate so far, on the step.
func waitInSync(ctx workflow.Context, timing RecoveryTiming, tracker *Tracker, step, primary string, resources []string, backup string) (activities.DRBDSyncProgress, error) {
	start, deadline := workflow.Now(ctx), workflow.Now(ctx).Add(timing.SyncTimeout)
	chunk := 60 * timing.PollInterval
	var first *activities.DRBDSyncProgress
	for {
		left := deadline.Sub(workflow.Now(ctx))
		if left <= 0 {
			return activities.DRBDSyncProgress{}, fmt.Errorf("%v not in sync on %s after %s", resources, backup, timing.SyncTimeout)
		}
		var p activities.DRBDSyncProgress
		o := timing.boundedWaitOptions(min(chunk, left) + timing.CallTimeout)
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), recHosts.WaitDRBDInSync, activities.WaitDRBDInSyncInput{
			InstanceID: primary, Resources: resources, PollInterval: timing.PollInterval, For: min(chunk, left),
		}).Get(ctx, &p); err != nil {
			return p, err
		}
		if p.InSync {
			tracker.SetETA(nil)
			return p, nil
		}
		msg := fmt.Sprintf("%s resyncing from the primary: %.1f%% of %v", backup, p.Done, resources)
		if first == nil {
			first = &p
		} else if rate := (p.Done - first.Done) / workflow.Now(ctx).Sub(start).Seconds(); rate > 0 {
			eta := workflow.Now(ctx).Add(time.Duration((100 - p.Done) / rate * float64(time.Second)))
			tracker.SetETA(&eta)
			msg += ", in sync about " + eta.UTC().Format(time.RFC3339)
		}
		tracker.Start(step, msg)
		// A chunk may end early (its attempt lost, the host slow to answer): at least a poll
		// between them.
		if err := workflow.Sleep(ctx, timing.PollInterval); err != nil {
			return p, err
		}
	}
}

// keepSpare makes the replace way's server, when it was kept and is not the new backup, the
// zone's warm spare: it moves into the cluster's standby cluster (a spare it took already is).
func (w *failover) keepSpare(ctx workflow.Context, backup activities.ServerInfo) {
	out, ok := w.kept[anyops.WayReplace]
	if !ok || out.Keep != keepSpare || out.Server.Name == backup.Name || out.Server.Cluster != w.primary.Cluster {
		return
	}
	srv := out.Server
	standby := activities.StandbyClusterOf(w.primary.Cluster)
	if err := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.TagResource, activities.TagResourceInput{ResourceID: srv.InstanceID,
		Tags: map[string]string{anyops.TagCluster: standby}}).Get(ctx, nil); err != nil {
		w.tracker.Event(fmt.Sprintf("could not make %s the spare: %v", srv.Name, err))
		return
	}
	srv.Cluster = standby
	rec := activities.FleetRecord{
		Clusters: []activities.PlannedCluster{{Name: standby, Zone: w.primary.Zone, State: anyops.ClusterStandby}},
		Servers:  []activities.ServerRecord{{PlannedServer: activities.PlannedServer{Name: srv.Name, Role: anyops.RoleFile, Zone: srv.Zone, Cluster: standby, InstanceType: srv.InstanceType}, InstanceID: srv.InstanceID, PrivateIP: srv.PrivateIP, State: anyops.ServerRunning}},
	}
	if err := workflow.ExecuteActivity(w.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		w.tracker.Event(fmt.Sprintf("could not record %s as the spare: %v", srv.Name, err))
		return
	}
	w.res.Spare = srv.Name
	w.event(ctx, "%s, built by the replace way, is the warm spare of %s", srv.Name, w.primary.Zone)
}

// record writes what the failover changed into the cloud's tags and the inventory: the
// serving server's role is file, its peer's backup; the replicas name them; moved volumes are
// on their new server. (FleetSync finds the same; this makes it known at once.)
func (w *failover) record(ctx workflow.Context) error {
	if w.serving == nil {
		return nil
	}
	w.tracker.Start(stepRecord, "recording the new roles")
	serving := *w.serving
	peer := ""
	switch {
	case w.res.Backup != "":
		peer = w.res.Backup
	case w.res.Winner == anyops.WayPromote:
		peer = w.primary.Name
	case w.backup != nil:
		peer = w.backup.Name
	}
	rec := activities.FleetRecord{}
	roles := map[string]anyops.Role{serving.Name: anyops.RoleFile}
	if peer != "" {
		roles[peer] = anyops.RoleBackup
	}
	servers := map[string]activities.ServerInfo{serving.Name: serving, w.primary.Name: w.primary}
	if w.backup != nil {
		servers[w.backup.Name] = *w.backup
	}
	if out, ok := w.kept[anyops.WayRepair]; ok {
		servers[out.Server.Name] = out.Server
	}
	for _, name := range []string{serving.Name, peer} {
		s, ok := servers[name]
		if !ok || name == "" {
			continue
		}
		if s.Role != roles[name] {
			if err := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.TagResource, activities.TagResourceInput{ResourceID: s.InstanceID,
				Tags: map[string]string{anyops.TagRole: string(roles[name])}}).Get(ctx, nil); err != nil {
				return err
			}
		}
		state := anyops.ServerRunning
		if name == w.primary.Name && w.res.Winner != anyops.WayRepair && w.res.Backup != name {
			state = anyops.ServerStopped
		}
		rec.Servers = append(rec.Servers, activities.ServerRecord{PlannedServer: activities.PlannedServer{Name: s.Name, Role: roles[name], Zone: s.Zone,
			Cluster: s.Cluster, InstanceType: s.InstanceType}, InstanceID: s.InstanceID, PrivateIP: s.PrivateIP, State: state})
	}
	// The serving side's volume of each resource: the backup's after a promotion, the moved
	// volumes (now on the replacement) or the repaired primary's own.
	servingVolume := map[string]string{}
	peerVolume := map[string]string{}
	for _, v := range w.target.Volumes {
		if v.DRBDResource != "" {
			servingVolume[v.DRBDResource] = v.VolumeID
		}
		if w.res.Winner == anyops.WayReplace {
			v.Server = serving.Name
			rec.Volumes = append(rec.Volumes, activities.VolumeRecord{VolumeID: v.VolumeID, Kind: v.Kind, Criticality: v.Criticality, SizeGiB: v.SizeGiB,
				Zone: v.Zone, Cluster: v.Cluster, Server: serving.Name, Device: v.Device, RAIDGroup: v.RAIDGroup, State: anyops.VolumeInUse})
		}
	}
	for _, v := range w.target.PeerVolumes {
		peerVolume[v.DRBDResource] = v.VolumeID
	}
	if w.res.Winner == anyops.WayPromote {
		servingVolume, peerVolume = peerVolume, servingVolume
	}
	for _, r := range w.resources {
		if peer == "" {
			break
		}
		rec.Replicas = append(rec.Replicas, activities.ReplicaRecord{Name: r.Name, Cluster: w.primary.Cluster, PrimaryServer: serving.Name,
			SecondaryServer: peer, PrimaryVolume: servingVolume[r.Name], SecondaryVolume: peerVolume[r.Name]})
	}
	if err := workflow.ExecuteActivity(w.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return err
	}
	w.tracker.Done(stepRecord, fmt.Sprintf("%s is the file server, %s its backup", serving.Name, cmpOr(peer, "none")))
	return nil
}
