package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// The handover of a release: the volumes made the new file server's, and the new file server
// serving them.

// restoreOnNewFileServer creates the snapshot's volume in the target zone, attaches it to the
// new file server where the old one had it and mounts it where the old one did.
func (r *release) restoreOnNewFileServer(ctx workflow.Context, m VolumeMove, snap activities.Snapshot) error {
	var vol activities.Volume
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.CreateVolumeFromSnapshot, activities.CreateVolumeFromSnapshotInput{
		Scope: r.scope, Step: "restore/" + m.VolumeID, Name: r.newFile.Name + "/" + string(m.Kind), SnapshotID: snap.ID, Zone: r.plan.TargetZone,
		VolumeType: m.Type, InitRateMiBps: r.policy.InitRateMiBps,
		Tags: map[string]string{anyops.TagCluster: r.res.NewCluster, anyops.TagKind: string(m.Kind), anyops.TagCriticality: string(m.Criticality), activities.TagSourceVolume: m.VolumeID},
	}).Get(ctx, &vol); err != nil {
		return err
	}
	r.moved[m.VolumeID] = vol.ID
	r.tracker.SetVolume(m.VolumeID, func(v *VolumeProgress) { v.Target, v.Message = vol.ID, "volume "+vol.ID+" in "+r.plan.TargetZone })
	if err := workflow.ExecuteActivity(r.waitCtx(ctx, r.timing.WaitTimeout), recCloud.WaitVolumeAvailable, activities.WaitVolumeInput{VolumeID: vol.ID, PollInterval: r.timing.PollInterval}).Get(ctx, nil); err != nil {
		// An earlier attempt attached it already: it is in use, never available again.
		var cur []activities.Volume
		if e := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.DescribeVolumes, activities.DescribeVolumesInput{VolumeIDs: []string{vol.ID}}).Get(ctx, &cur); e != nil || len(cur) != 1 || len(cur[0].Attachments) == 0 {
			return err
		}
	}
	device := r.deviceOf(m.VolumeID)
	if err := r.attachTo(ctx, vol.ID, r.newFile.InstanceID, device); err != nil {
		return err
	}
	var dev activities.VolumeDevice
	if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.FindVolumeDevice, activities.VolumeDeviceInput{InstanceID: r.newFile.InstanceID, VolumeID: vol.ID}).Get(ctx, &dev); err != nil {
		return err
	}
	if hm, ok := r.extraMounts()[m.VolumeID]; ok {
		if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.Mount, activities.MountInput{InstanceID: r.newFile.InstanceID, Device: dev.StablePath(), MountPoint: hm.MountPoint, FSType: hm.FSType}).Get(ctx, nil); err != nil {
			return err
		}
	}
	rec := activities.FleetRecord{Volumes: []activities.VolumeRecord{{VolumeID: vol.ID, Kind: m.Kind, Criticality: m.Criticality, SizeGiB: m.SizeGiB,
		Zone: r.plan.TargetZone, Cluster: r.res.NewCluster, Server: r.newFile.Name, Device: device, State: anyops.VolumeInUse}}}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return err
	}
	r.event("%s (%s) is %s on %s", m.VolumeID, m.Kind, vol.ID, r.newFile.Name)
	return nil
}

// deviceOf is the device the inventory has a volume attached at (/dev/sdX when unknown).
func (r *release) deviceOf(volume string) string {
	for _, v := range r.facts.Inventory.Volumes {
		if v.VolumeID == volume && v.Device != "" {
			return v.Device
		}
	}
	return "/dev/sdz"
}

// attachTo attaches a volume to an instance (where it is attached already, nothing) and waits
// until the host sees it.
func (r *release) attachTo(ctx workflow.Context, volume, instance, device string) error {
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.AttachVolume, activities.AttachVolumeInput{VolumeID: volume, InstanceID: instance, Device: device}).Get(ctx, nil); err != nil {
		return err
	}
	return workflow.ExecuteActivity(r.waitCtx(ctx, r.timing.WaitTimeout), recCloud.WaitVolumeAttached, activities.WaitVolumeInput{VolumeID: volume, PollInterval: r.timing.PollInterval}).Get(ctx, nil)
}

// detachFrom detaches a volume from an instance (a volume not attached there, nothing) and
// waits until it is available.
func (r *release) detachFrom(ctx workflow.Context, volume, instance string) error {
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.DetachVolume, activities.DetachVolumeInput{VolumeID: volume, InstanceID: instance}).Get(ctx, nil); err != nil {
		return err
	}
	return workflow.ExecuteActivity(r.waitCtx(ctx, r.timing.WaitTimeout), recCloud.WaitVolumeAvailable, activities.WaitVolumeInput{VolumeID: volume, PollInterval: r.timing.PollInterval}).Get(ctx, nil)
}

// moveNode moves one resource's node — its volume and its node id — from one host to another:
// down on the first (its file removed), the volume detached and attached to the second, the
// resource's file with the node at its new address written on every node, up there. It looks
// first at each step, so a run that died half-way goes on where it stopped.
func (r *release) moveNode(ctx workflow.Context, l SeedResource, from, to activities.ServerInfo, toHost string) error {
	hc := r.hostCtx(ctx)
	if err := workflow.ExecuteActivity(hc, recHosts.DRBDRemove, activities.DRBDResourceInput{InstanceID: from.InstanceID, Resource: l.Name}).Get(ctx, nil); err != nil {
		return err
	}
	if err := r.detachFrom(ctx, l.Source, from.InstanceID); err != nil {
		return err
	}
	device := r.deviceOf(l.Source)
	if err := r.attachTo(ctx, l.Source, to.InstanceID, device); err != nil {
		return err
	}
	var dev activities.VolumeDevice
	if err := workflow.ExecuteActivity(hc, recHosts.FindVolumeDevice, activities.VolumeDeviceInput{InstanceID: to.InstanceID, VolumeID: l.Source}).Get(ctx, &dev); err != nil {
		return err
	}
	node := activities.DRBDNode{Hostname: toHost, Address: to.PrivateIP, NodeID: l.SourceNodeID, Disk: dev.StablePath()}
	conf := l.config(l.SourceNodeID, node, -1)
	var hosts []string
	for _, n := range l.Nodes {
		if n.Node.NodeID != l.SourceNodeID {
			hosts = append(hosts, n.InstanceID)
		}
	}
	hosts = append(hosts, to.InstanceID)
	if err := together(ctx, hosts, func(h string) string { return l.Name + " on " + h }, func(h string) workflow.Future {
		return workflow.ExecuteActivity(hc, recHosts.ConfigureDRBD, activities.ConfigureDRBDInput{InstanceID: h, Resource: conf})
	}, nil); err != nil {
		return err
	}
	if err := workflow.ExecuteActivity(hc, recHosts.DRBDUp, activities.DRBDResourceInput{InstanceID: to.InstanceID, Resource: l.Name}).Get(ctx, nil); err != nil {
		return err
	}
	// The layout names the node where it is now (a later move or a retirement writes files
	// from it).
	for i := range r.layouts {
		if r.layouts[i].Name != l.Name {
			continue
		}
		for j := range r.layouts[i].Nodes {
			if r.layouts[i].Nodes[j].Node.NodeID == l.SourceNodeID {
				r.layouts[i].Nodes[j] = SeedNode{InstanceID: to.InstanceID, Node: node}
			}
		}
	}
	return nil
}

// inZoneMoves are the old file server's plain volumes (not DRBD's) that are in the target
// zone already: they move to the new file server as they are, in the window.
func (r *release) inZoneMoves() []VolumeMove {
	var out []VolumeMove
	for _, m := range r.plan.Volumes {
		if m.Way == anyops.WayInZone && m.Server == r.fileServer.Name && m.Resource == "" {
			out = append(out, m)
		}
	}
	return out
}

// moveVolume moves a plain volume from one server to another: detached (it was unmounted in
// the maintenance), attached at the device the inventory has it at, mounted where the old
// file server had it; recorded on its new server. Each step looks first.
func (r *release) moveVolume(ctx workflow.Context, m VolumeMove, from, to activities.ServerInfo) error {
	if err := r.detachFrom(ctx, m.VolumeID, from.InstanceID); err != nil {
		return err
	}
	device := r.deviceOf(m.VolumeID)
	if err := r.attachTo(ctx, m.VolumeID, to.InstanceID, device); err != nil {
		return err
	}
	var dev activities.VolumeDevice
	if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.FindVolumeDevice, activities.VolumeDeviceInput{InstanceID: to.InstanceID, VolumeID: m.VolumeID}).Get(ctx, &dev); err != nil {
		return err
	}
	if hm, ok := r.extraMounts()[m.VolumeID]; ok {
		if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.Mount, activities.MountInput{InstanceID: to.InstanceID, Device: dev.StablePath(), MountPoint: hm.MountPoint, FSType: hm.FSType}).Get(ctx, nil); err != nil {
			return err
		}
	}
	rec := activities.FleetRecord{Volumes: []activities.VolumeRecord{{VolumeID: m.VolumeID, Kind: m.Kind, Criticality: m.Criticality, SizeGiB: m.SizeGiB,
		Zone: m.Zone, Cluster: to.Cluster, Server: to.Name, Device: device, State: anyops.VolumeInUse}}}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return err
	}
	r.event("%s (%s) moved from %s to %s", m.VolumeID, m.Kind, from.Name, to.Name)
	return nil
}

func (r *release) newFileInfo() activities.ServerInfo {
	return activities.ServerInfo{Name: r.newFile.Name, Role: anyops.RoleFile, Zone: r.plan.TargetZone, Cluster: r.res.NewCluster,
		InstanceID: r.newFile.InstanceID, PrivateIP: r.newFile.PrivateIP, State: anyops.ServerRunning}
}

// handover hands every resource's backup volume to the new file server, in the backup's
// node id, all resources at once, and waits until the new file server is UpToDate with its
// peers (the old file server and the new backup) in every one.
func (r *release) handover(ctx workflow.Context) error {
	r.tracker.Start(stepRelHandover, fmt.Sprintf("handing %d volumes from %s to %s", len(r.layouts), r.backup.Name, r.newFile.Name))
	r.handedOver = true // from the first step on, a rollback looks at where each volume is
	nf := r.newFileInfo()
	if err := together(ctx, r.layouts, func(l SeedResource) string { return l.Name }, func(l SeedResource) workflow.Future {
		f, set := workflow.NewFuture(ctx)
		workflow.Go(ctx, func(ctx workflow.Context) {
			err := r.moveNode(ctx, l, r.backup, nf, r.newFile.Hostname)
			if err == nil {
				r.moved[l.Source] = l.Source
			}
			set.Set(nil, err)
		})
		return f
	}, nil); err != nil {
		return atStep(stepRelHandover, err)
	}
	// The file server's plain volumes already in the target zone (a release in the same zone:
	// logs, Dropbox) move as they are.
	if err := together(ctx, r.inZoneMoves(), func(m VolumeMove) string { return m.VolumeID }, func(m VolumeMove) workflow.Future {
		f, set := workflow.NewFuture(ctx)
		workflow.Go(ctx, func(ctx workflow.Context) {
			err := r.moveVolume(ctx, m, r.fileServer, nf)
			if err == nil {
				r.moved[m.VolumeID] = m.VolumeID
			}
			set.Set(nil, err)
		})
		return f
	}, nil); err != nil {
		return atStep(stepRelHandover, err)
	}
	names, err := r.waitResourcesUpToDate(ctx, r.newFile.InstanceID)
	if err != nil {
		return atStep(stepRelHandover, err)
	}
	r.tracker.Done(stepRelHandover, fmt.Sprintf("%s holds %d resources in %s's place, UpToDate with %s and %s", r.newFile.Name, len(names), r.backup.Name, r.fileServer.Name, r.newBackup.Name))
	return nil
}

// serve makes the new file server Primary of every resource, assembles md0, mounts and
// exports it.
func (r *release) serve(ctx workflow.Context) error {
	r.tracker.Start(stepRelServe, r.newFile.Name+": DRBD Primary, md0, mount, export")
	var names, members []string
	for _, l := range r.layouts {
		names = append(names, l.Name)
		members = append(members, fmt.Sprintf("/dev/drbd%d", l.Minor))
	}
	hc := r.hostCtx(ctx)
	r.serving = true
	if err := r.locks.pass(ctx, "promoting "+r.newFile.Name, func(ov *activities.Override) error {
		return workflow.ExecuteActivity(hc, recHosts.DRBDPromote, activities.DRBDPromoteInput{InstanceID: r.newFile.InstanceID, Resources: names, Override: ov}).Get(ctx, nil)
	}); err != nil {
		return atStep(stepRelServe, err)
	}
	if err := workflow.ExecuteActivity(hc, recHosts.AssembleRAID, activities.AssembleRAIDInput{InstanceID: r.newFile.InstanceID, Device: homeArray.device, Members: members}).Get(ctx, nil); err != nil {
		return atStep(stepRelServe, err)
	}
	if err := exportArray(hc, ctx, r.newFile.InstanceID, homeArray, false); err != nil {
		return atStep(stepRelServe, err)
	}
	r.tracker.Done(stepRelServe, fmt.Sprintf("%s serves %s from md0 over %d resources", r.newFile.Name, homeArray.mountPoint, len(names)))
	return nil
}
