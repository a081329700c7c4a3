package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// The three ways of FileServerFailover. Each runs in its own branch of the race; each asks for
// the cutover (failover.cutover) once it has a server ready to serve, and only the way granted
// it fences the old primary and takes the data over.

// ErrBootFailed is the error type of a repair whose instance came back without a usable
// operating system (a corrupt boot disk: the instance check fails, SSM never answers).
const ErrBootFailed = "BootFailed"

// promote is the way of the hot backup: only when every resource of the file server is
// UpToDate on the backup (the not-uptodate interlock: an Outdated or Inconsistent copy waits
// here for an override, and is then promoted with --force). Granted, it fences the old
// primary, makes the backup Primary of every resource, and serves from it.
func (w *failover) promote(ctx workflow.Context) (wayOutcome, error) {
	const way = anyops.WayPromote
	if w.backup == nil {
		return wayOutcome{Message: "the file server has no backup"}, nil
	}
	var override *activities.Override
	if ok, not := w.backupUpToDate(); !ok {
		lock := anyops.InterlockNotUpToDate
		what := fmt.Sprintf("promote %s: %s", w.backup.Name, strings.Join(not, ", "))
		w.setBranch(way, StepRunning, "the backup is not a hot copy ("+strings.Join(not, ", ")+"): it is promoted only with an override of "+string(lock), 0)
		var err error
		if override, err = w.locks.await(ctx, lock, what, func() bool { return w.granted != "" }); err != nil {
			return wayOutcome{}, err
		}
		if override == nil {
			return wayOutcome{Message: "the backup was not UpToDate; " + string(w.granted) + " won"}, nil
		}
	}
	granted, err := w.cutover(ctx, way, *w.backup)
	if err != nil || !granted {
		return wayOutcome{Message: "another way won the cutover"}, err
	}
	if err := w.fenceOldPrimary(ctx); err != nil {
		return wayOutcome{}, err
	}
	if err := w.takeOver(ctx, way, *w.backup, override, nil); err != nil {
		return wayOutcome{}, err
	}
	return wayOutcome{Served: true, Server: *w.backup}, nil
}

// repair is the way of the failed server itself: stop it (forced once the policy's
// StopTimeout has passed: a stop on failed hardware hangs), start it on new hardware, and
// check its boot disk (the instance check and SSM). Back, its DRBD resources are up as
// Secondary; granted the cutover it becomes Primary again. Having lost to the promoted backup,
// it is kept (LosersKeep) as the new backup: Secondary, it resyncs what it missed.
func (w *failover) repair(ctx workflow.Context) (wayOutcome, error) {
	const way = anyops.WayRepair
	id := w.primary.InstanceID
	w.setBranch(way, StepRunning, "stopping "+w.primary.Name+" (forced after "+w.timing.StopTimeout.String()+")", 0.1)
	w.branchETA(ctx, way, w.timing.StopTimeout+2*w.timing.PollInterval)
	if err := w.stopInstance(ctx, way, id); err != nil {
		return wayOutcome{}, err
	}
	if w.granted == anyops.WayReplace {
		return wayOutcome{Message: "its volumes moved to the replacement"}, nil
	}
	w.setBranch(way, StepRunning, "starting "+w.primary.Name+" on new hardware", 0.4)
	if err := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.StartInstance, activities.InstanceRef{InstanceID: id}).Get(ctx, nil); err != nil {
		return wayOutcome{}, err
	}
	if err := workflow.ExecuteActivity(w.deadlineCtx(ctx, w.timing.BootTimeout), recCloud.WaitInstanceRunning,
		activities.WaitInstanceInput{InstanceID: id, PollInterval: w.timing.PollInterval, Timeout: w.timing.BootTimeout}).Get(ctx, nil); err != nil {
		return wayOutcome{}, err
	}
	w.setBranch(way, StepRunning, "checking the boot disk of "+w.primary.Name, 0.6)
	if err := w.checkBoot(ctx, id); err != nil {
		// Leave it stopped: fenced, and no half-booted host beside the data.
		_ = workflow.ExecuteActivity(w.callCtx(ctx), recCloud.FenceInstance, activities.FenceInput{InstanceID: id}).Get(ctx, nil)
		return wayOutcome{}, err
	}
	var host string
	err := workflow.ExecuteActivity(w.hostCtx(ctx), recHosts.HostName, activities.InstanceRef{InstanceID: id}).Get(ctx, &host)
	if err != nil {
		return wayOutcome{}, err
	}
	granted := false
	if w.granted == "" {
		if granted, err = w.cutover(ctx, way, w.primary); err != nil {
			return wayOutcome{}, err
		}
	}
	if !granted {
		if w.granted == anyops.WayPromote && w.policy.Losers == anyops.LosersKeep {
			// The promoted backup serves: this server's resources came up Secondary at boot and
			// resync from it what they missed. It is the new backup.
			return wayOutcome{Keep: keepBackup, Server: w.primary, Hostname: host, Message: w.primary.Name + " is back on new hardware, Secondary"}, nil
		}
		// Not kept: stopped again (fenced), so that it does not come back as a peer nobody chose.
		if err := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.FenceInstance, activities.FenceInput{InstanceID: id}).Get(ctx, nil); err != nil {
			return wayOutcome{}, err
		}
		return wayOutcome{Message: string(w.granted) + " won the cutover; " + w.primary.Name + " stopped again"}, nil
	}
	// The old primary is the winner itself: there is nothing to fence, and the commit point
	// guarantees no other way made the backup Primary.
	if err := w.takeOver(ctx, way, w.primary, nil, nil); err != nil {
		return wayOutcome{}, err
	}
	return wayOutcome{Served: true, Server: w.primary, Hostname: host}, nil
}

// stopInstance stops the failed instance and waits until it is stopped: gracefully first, and
// with Force once StopTimeout has passed.
func (w *failover) stopInstance(ctx workflow.Context, way anyops.RecoveryWay, id string) error {
	if err := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.StopInstance, activities.StopInstanceInput{InstanceID: id}).Get(ctx, nil); err != nil {
		return err
	}
	err := workflow.ExecuteActivity(w.deadlineCtx(ctx, w.timing.StopTimeout), recCloud.WaitInstanceStopped,
		activities.WaitInstanceInput{InstanceID: id, PollInterval: w.timing.PollInterval, Timeout: w.timing.StopTimeout}).Get(ctx, nil)
	if err == nil || temporal.IsCanceledError(err) {
		return err
	}
	w.setBranch(way, StepRunning, "the stop hangs: forcing it", 0.2)
	if err := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.StopInstance, activities.StopInstanceInput{InstanceID: id, Force: true}).Get(ctx, nil); err != nil {
		return err
	}
	return workflow.ExecuteActivity(w.waitCtx(ctx, w.timing.WaitTimeout), recCloud.WaitInstanceStopped,
		activities.WaitInstanceInput{InstanceID: id, PollInterval: w.timing.PollInterval, Timeout: w.timing.WaitTimeout}).Get(ctx, nil)
}

// checkBoot waits, within BootTimeout, until the started instance's operating system answers
// SSM; a failed instance status check (a corrupt boot disk) or no answer by then is BootFailed.
func (w *failover) checkBoot(ctx workflow.Context, id string) error {
	deadline := workflow.Now(ctx).Add(w.timing.BootTimeout)
	for {
		var probe activities.HostProbe
		if err := workflow.ExecuteActivity(w.quickHostCtx(ctx), recHosts.ProbeHost, activities.InstanceRef{InstanceID: id}).Get(ctx, &probe); err != nil {
			return err
		}
		if probe.Reachable {
			return nil
		}
		var health activities.InstanceHealth
		if err := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.InstanceStatus, activities.InstanceRef{InstanceID: id}).Get(ctx, &health); err != nil {
			return err
		}
		if health.InstanceStatus == "impaired" {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s started on new hardware but its instance check fails and SSM cannot reach it: its boot disk is corrupt", id), ErrBootFailed, nil)
		}
		if !workflow.Now(ctx).Before(deadline) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s started but its operating system did not answer within %s", id, w.timing.BootTimeout), ErrBootFailed, nil)
		}
		if err := workflow.Sleep(ctx, w.timing.PollInterval); err != nil {
			return err
		}
	}
}

// replace is the way of a new server: the zone's warm spare (already bootstrapped), or a new
// file server built at once (BuildServer: the ~20 minutes of a bootstrap). Granted the
// cutover, it fences the old primary, moves its data volumes to the new server (force-detached
// only from the fenced server), sets DRBD up there with the old primary's identity in each
// pair, makes it Primary, assembles md0 over the DRBD devices, checks, mounts and exports the
// file system. A server being built asks for the cutover as soon as it runs if no other way
// can serve any more (the repair failed, the backup is not a hot copy): the volume move then
// runs while it bootstraps, and it serves when its bootstrap ends. Having lost, its server is
// kept (LosersKeep) as the zone's spare, or for the new backup, or terminated (LosersClean).
func (w *failover) replace(ctx workflow.Context) (wayOutcome, error) {
	const way = anyops.WayReplace
	if w.lostTo(way) {
		// Another way won before this one began: nothing to claim or build.
		return wayOutcome{Message: string(w.granted) + " won before it began"}, nil
	}
	srv, host, build, err := w.replacementServer(ctx)
	if err != nil {
		return wayOutcome{}, err
	}
	// bootstrapped waits for a server still being built to finish (nil: it is ready).
	bootstrapped := func(ctx workflow.Context) error {
		if build == nil {
			return nil
		}
		w.setBranch(way, StepRunning, srv.Name+" holds the data; waiting for its bootstrap to end", 0.95)
		var built BuiltServer
		err := build.Get(ctx, &built)
		build = nil
		return err
	}
	if !w.lostTo(way) {
		granted, err := w.cutover(ctx, way, srv)
		if err != nil {
			w.releaseSpare(ctx)
			w.cleanUpReplacement(ctx, srv)
			return wayOutcome{}, err
		}
		if granted {
			if err := w.fenceOldPrimary(ctx); err != nil {
				return wayOutcome{}, err
			}
			if err := w.moveVolumes(ctx, way, srv, host); err != nil {
				return wayOutcome{}, err
			}
			if err := w.takeOver(ctx, way, srv, nil, bootstrapped); err != nil {
				return wayOutcome{}, err
			}
			return wayOutcome{Served: true, Server: srv, Hostname: host}, nil
		}
	}
	if err := bootstrapped(ctx); err != nil {
		return wayOutcome{}, err
	}
	if w.claimed != nil {
		w.releaseSpare(ctx)
		return wayOutcome{Message: srv.Name + " stays the zone's spare"}, nil
	}
	if w.policy.Losers == anyops.LosersKeep {
		return wayOutcome{Keep: keepSpare, Server: srv, Hostname: host, Message: srv.Name + " is ready, bootstrapped"}, nil
	}
	w.cleanUpReplacement(ctx, srv)
	return wayOutcome{Message: "its server was terminated"}, nil
}

// othersCannotServe says whether no way but this one can still serve: every other has ended,
// or is held by the not-uptodate interlock (a backup that is no hot copy).
func (w *failover) othersCannotServe(way anyops.RecoveryWay) bool {
	for _, b := range w.branches {
		if b.way == way || b.done.IsReady() {
			continue
		}
		if b.way == anyops.WayPromote && w.tracker.Blocking(string(anyops.InterlockNotUpToDate)) {
			continue
		}
		return false
	}
	return true
}

// moveVolumes moves the fenced old primary's data volumes to the new server, at the devices
// they had, and sets DRBD up there: each resource's file names the new server in the old
// primary's place (node 0, its disk by id), on the new server and on the backup (adjusted if
// up), metadata kept, resources up.
func (w *failover) moveVolumes(ctx workflow.Context, way anyops.RecoveryWay, srv activities.ServerInfo, host string) error {
	w.tracker.Start(stepTakeOver, fmt.Sprintf("moving %d volumes from %s to %s", len(w.target.Volumes), w.primary.Name, srv.Name))
	w.setBranch(way, StepRunning, fmt.Sprintf("moving %d volumes from the fenced %s", len(w.target.Volumes), w.primary.Name), 0.85)
	callCtx, hostCtx := w.callCtx(ctx), w.hostCtx(ctx)
	waitCtx := w.waitCtx(ctx, w.timing.WaitTimeout)
	vols := w.target.Volumes
	name := func(v activities.VolumeInfo) string { return v.VolumeID }
	if err := together(ctx, vols, name, func(v activities.VolumeInfo) workflow.Future {
		return workflow.ExecuteActivity(callCtx, recCloud.DetachFromFenced, activities.DetachFromFencedInput{VolumeID: v.VolumeID, InstanceID: w.primary.InstanceID})
	}, nil); err != nil {
		// The only way past the unfenced interlock is its override, one volume at a time.
		if _, ok := activities.InterlockOf(err); !ok {
			return err
		}
		for _, v := range vols {
			if err := w.locks.pass(ctx, "force-detach "+v.VolumeID+" from "+w.primary.Name, func(ov *activities.Override) error {
				return workflow.ExecuteActivity(callCtx, recCloud.DetachFromFenced, activities.DetachFromFencedInput{VolumeID: v.VolumeID, InstanceID: w.primary.InstanceID, Override: ov}).Get(ctx, nil)
			}); err != nil {
				return err
			}
		}
	}
	w.event(ctx, "%d data volumes force-detached from the fenced %s", len(vols), w.primary.Name)
	if err := together(ctx, vols, name, func(v activities.VolumeInfo) workflow.Future {
		return workflow.ExecuteActivity(waitCtx, recCloud.WaitVolumeAvailable, activities.WaitVolumeInput{VolumeID: v.VolumeID, PollInterval: w.timing.PollInterval})
	}, nil); err != nil {
		return err
	}
	if err := together(ctx, vols, name, func(v activities.VolumeInfo) workflow.Future {
		return workflow.ExecuteActivity(callCtx, recCloud.AttachVolume, activities.AttachVolumeInput{VolumeID: v.VolumeID, InstanceID: srv.InstanceID, Device: v.Device})
	}, nil); err != nil {
		return err
	}
	if err := together(ctx, vols, name, func(v activities.VolumeInfo) workflow.Future {
		return workflow.ExecuteActivity(waitCtx, recCloud.WaitVolumeAttached, activities.WaitVolumeInput{VolumeID: v.VolumeID, PollInterval: w.timing.PollInterval})
	}, nil); err != nil {
		return err
	}
	devices := map[string]activities.VolumeDevice{}
	if err := together(ctx, vols, name, func(v activities.VolumeInfo) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.FindVolumeDevice, activities.VolumeDeviceInput{InstanceID: srv.InstanceID, VolumeID: v.VolumeID})
	}, func(v activities.VolumeInfo, f workflow.Future) error {
		var d activities.VolumeDevice
		err := f.Get(ctx, &d)
		devices[v.VolumeID] = d
		return err
	}); err != nil {
		return err
	}
	w.event(ctx, "%d volumes attached to %s", len(vols), srv.Name)
	newSide := func(v activities.VolumeInfo) drbdSide {
		return drbdSide{Server: srv.Name, InstanceID: srv.InstanceID, Hostname: host, IP: srv.PrivateIP, VolumeID: v.VolumeID, Disk: devices[v.VolumeID].StablePath()}
	}
	pairs, backupUp, err := w.pairsWith(ctx, newSide)
	if err != nil {
		return err
	}
	if err := setUpDRBD(ctx, hostCtx, pairs, true, backupUp); err != nil {
		return err
	}
	w.event(ctx, "DRBD set up on %s in %s's place%s", srv.Name, w.primary.Name, map[bool]string{true: ", and adjusted on " + w.backupName(), false: ""}[backupUp])
	return nil
}

// pairsWith are the primary's DRBD resources with side taking the old primary's place (and its
// node id), the backup the other side as its resource file has it; backupUp says whether the
// backup answered, so that its files can be adjusted to the new peer. A backup that does not
// answer is taken as builds make it: node 1, its disk by id, named after its address (its file
// is rewritten when it is rebuilt).
func (w *failover) pairsWith(ctx workflow.Context, side func(activities.VolumeInfo) drbdSide) ([]drbdPair, bool, error) {
	if w.backup == nil {
		return nil, false, temporal.NewNonRetryableApplicationError("the file server's resources have no second side", activities.ErrInvalidInput, nil)
	}
	var pairs []drbdPair
	for _, r := range w.resources {
		i := slices.IndexFunc(w.target.Volumes, func(v activities.VolumeInfo) bool { return v.DRBDResource == r.Name })
		j := slices.IndexFunc(w.target.PeerVolumes, func(v activities.VolumeInfo) bool { return v.DRBDResource == r.Name })
		if i < 0 || j < 0 {
			return nil, false, temporal.NewNonRetryableApplicationError("the inventory has no volumes of both sides of "+r.Name, activities.ErrInvalidInput, nil)
		}
		p := drbdPair{Resource: r.Name, Minor: r.Minor, Primary: side(w.target.Volumes[i])}
		p.Secondary = drbdSide{Server: w.backup.Name, InstanceID: w.backup.InstanceID, IP: w.backup.PrivateIP, VolumeID: w.target.PeerVolumes[j].VolumeID,
			Hostname: "ip-" + strings.ReplaceAll(w.backup.PrivateIP, ".", "-"), Disk: activities.NVMeByIDPrefix + strings.Replace(w.target.PeerVolumes[j].VolumeID, "-", "", 1), NodeID: 1}
		pairs = append(pairs, p)
	}
	// The backup's own files say how it names itself, its disks and both node ids.
	var names []string
	for _, p := range pairs {
		names = append(names, p.Resource)
	}
	confs, err := readDRBDConfigs(ctx, w.quickHostCtx(ctx), w.backup.InstanceID, names)
	backupUp := err == nil
	for k := range pairs {
		for _, n := range confs[pairs[k].Resource].Nodes {
			if n.Address == w.backup.PrivateIP {
				pairs[k].Secondary.Hostname, pairs[k].Secondary.Disk, pairs[k].Secondary.NodeID = n.Hostname, n.Disk, n.NodeID
			} else {
				pairs[k].Primary.NodeID = n.NodeID
			}
		}
	}
	return pairs, backupUp, nil
}

func (w *failover) backupName() string {
	if w.backup == nil {
		return ""
	}
	return w.backup.Name
}

// takeOver makes srv serve the data: Primary of every resource (the interlocks: never a copy
// that is not UpToDate without the override given, never beside a Primary), md0 assembled over
// the DRBD devices (never created), its file system checked (errors left: no serving), mounted
// and exported, and the NFS service answering.
// ready, when not nil, is waited for before the file system is exported: a server still
// bootstrapping takes the data over, and serves once its NFS service is installed.
func (w *failover) takeOver(ctx workflow.Context, way anyops.RecoveryWay, srv activities.ServerInfo, override *activities.Override, ready func(workflow.Context) error) error {
	w.tracker.Start(stepTakeOver, fmt.Sprintf("%s takes the data over", srv.Name))
	w.setBranch(way, StepRunning, srv.Name+" takes the data over", 0.9)
	hostCtx := w.hostCtx(ctx)
	var names []string
	for _, r := range w.resources {
		names = append(names, r.Name)
	}
	if err := w.locks.pass(ctx, "promote "+srv.Name, func(ov *activities.Override) error {
		if ov == nil {
			ov = override
		}
		var out activities.DRBDPromoteOutput
		return workflow.ExecuteActivity(hostCtx, recHosts.DRBDPromote, activities.DRBDPromoteInput{InstanceID: srv.InstanceID, Resources: names, Override: ov}).Get(ctx, &out)
	}); err != nil {
		w.tracker.Fail(stepTakeOver, err)
		return err
	}
	w.event(ctx, "%s is Primary of %v", srv.Name, names)
	for _, a := range w.arrays() {
		if err := workflow.ExecuteActivity(hostCtx, recHosts.AssembleRAID, activities.AssembleRAIDInput{InstanceID: srv.InstanceID, Device: a.device, Members: a.members}).Get(ctx, nil); err != nil {
			w.tracker.Fail(stepTakeOver, err)
			return err
		}
		var fsck activities.FsckOutput
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.timing.longHostOptions(w.timing.WaitTimeout)), recHosts.Fsck,
			activities.FsckInput{InstanceID: srv.InstanceID, Device: a.device, Repair: true}).Get(ctx, &fsck); err != nil {
			w.tracker.Fail(stepTakeOver, err)
			return err
		}
		if fsck.ErrorsLeft {
			err := temporal.NewNonRetryableApplicationError(fmt.Sprintf("fsck of %s on %s left errors: %s", a.device, srv.Name, lastLineOf(fsck.Result.Stderr)), activities.ErrCommandFailed, nil)
			w.tracker.Fail(stepTakeOver, err)
			return err
		}
		if err := workflow.ExecuteActivity(hostCtx, recHosts.Mount, activities.MountInput{InstanceID: srv.InstanceID, Device: a.device, MountPoint: a.mountPoint, FSType: "ext4"}).Get(ctx, nil); err != nil {
			w.tracker.Fail(stepTakeOver, err)
			return err
		}
	}
	if ready != nil {
		if err := ready(ctx); err != nil {
			w.tracker.Fail(stepTakeOver, err)
			return err
		}
	}
	for _, a := range w.arrays() {
		if err := workflow.ExecuteActivity(hostCtx, recHosts.ExportNFS, activities.NFSExportInput{InstanceID: srv.InstanceID, Path: a.mountPoint,
			Clients: demoNFSClients, Options: demoNFSOptions}).Get(ctx, nil); err != nil {
			w.tracker.Fail(stepTakeOver, err)
			return err
		}
	}
	var probe activities.HealthProbeOutput
	if err := workflow.ExecuteActivity(hostCtx, recHosts.HealthProbe, activities.HealthProbeInput{InstanceID: srv.InstanceID, URL: "http://localhost:2049/"}).Get(ctx, &probe); err != nil {
		w.tracker.Fail(stepTakeOver, err)
		return err
	}
	if !probe.Healthy {
		err := temporal.NewNonRetryableApplicationError(fmt.Sprintf("the NFS service of %s does not answer: %s", srv.Name, probe.Detail), activities.ErrCommandFailed, nil)
		w.tracker.Fail(stepTakeOver, err)
		return err
	}
	w.tracker.Done(stepTakeOver, fmt.Sprintf("%s serves %s", srv.Name, anyops.FileServiceExport))
	w.event(ctx, "%s serves %s (fsck clean, mounted, exported)", srv.Name, anyops.FileServiceExport)
	return nil
}

// arrays are the md arrays of the primary's DRBD resources: md0 over /dev/drbd<minor>, mounted
// at /srv/home.
func (w *failover) arrays() []mdArray {
	minor := map[string]int{}
	for _, r := range w.resources {
		minor[r.Name] = r.Minor
	}
	var out []mdArray
	for _, v := range w.target.Volumes {
		if v.RAIDGroup == "" || v.DRBDResource == "" {
			continue
		}
		dev := "/dev/" + v.RAIDGroup
		i := -1
		for j := range out {
			if out[j].device == dev {
				i = j
			}
		}
		if i < 0 {
			out = append(out, mdArray{server: v.Server, device: dev, mountPoint: "/srv/" + string(v.Kind)})
			i = len(out) - 1
		}
		out[i].members = append(out[i].members, fmt.Sprintf("/dev/drbd%d", minor[v.DRBDResource]))
	}
	return out
}
