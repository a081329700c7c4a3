package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// BuildClusterWorkflowType is the registered name of BuildCluster.
const BuildClusterWorkflowType = "BuildCluster"

// BuildClusterWorkflowID is the business key of building a cluster: one build per cluster.
func BuildClusterWorkflowID(cluster string) string { return "build-cluster/" + cluster }

// BuildClusterInput is a cluster to build: a plan of the live shape (activities.ClusterPlan,
// or the demo fleet's).
type BuildClusterInput struct {
	// Scope is the idempotency scope of everything the build creates (see BuildServerInput).
	Scope   string               `json:"scope"`
	Cluster string               `json:"cluster"`
	Plan    activities.FleetPlan `json:"plan"`
	ImageID string               `json:"image_id,omitempty"`
	// Spare also builds the cluster's warm spare: a bootstrapped file server, not serving, in
	// the cluster's zone (activities.SpareServerOf), for a failover's replace way to take.
	Spare  bool           `json:"spare,omitempty"`
	Timing RecoveryTiming `json:"timing,omitempty"`
}

// BuildClusterResult names what the cluster is made of in the cloud.
type BuildClusterResult struct {
	// Instances maps server names to instance ids.
	Instances map[string]string `json:"instances"`
	// Volumes maps volume names ("live-file/home0") to volume ids.
	Volumes map[string]string `json:"volumes"`
	// Devices maps volume names to the device their host sees them as (/dev/nvme1n1 on the
	// demo's Nitro instances).
	Devices map[string]string `json:"devices"`
	// DRBDInSync counts the DRBD resources found in sync on their primaries.
	DRBDInSync int `json:"drbd_in_sync"`
	// Arrays maps "server:/dev/mdN" to the array's members, in order (DRBD devices).
	Arrays map[string][]string `json:"arrays"`
	// Exports lists the NFS exports ("server:/srv/home").
	Exports []string `json:"exports"`
	// Spare is the warm spare's server name, when one was built.
	Spare string `json:"spare,omitempty"`
	// FileService is the name the clients mount the file service by, and HostedZoneID the
	// private zone that holds it.
	FileService  string `json:"file_service"`
	FileServerIP string `json:"file_server_ip"`
	HostedZoneID string `json:"hosted_zone_id"`
	// Mounts maps each client to the server its mount reaches.
	Mounts map[string]string `json:"mounts"`
}

// Steps of BuildCluster, as its Status shows them.
const (
	stepRecordCluster = "record-cluster"
	stepBuildServers  = "build-servers"
	stepConfigDRBD    = "configure-drbd"
	stepCheckDRBD     = "check-drbd"
	stepArrays        = "assemble-arrays"
	stepExports       = "mount-and-export"
	stepFileService   = "file-service-name"
	stepMountClients  = "mount-clients"
	stepClusterLive   = "record-live"
)

// BuildClusterSteps are BuildCluster's steps in order.
var BuildClusterSteps = []string{stepRecordCluster, stepBuildServers, stepConfigDRBD, stepCheckDRBD, stepArrays, stepExports,
	stepFileService, stepMountClients, stepClusterLive}

// BuildCluster builds a whole cluster of the live shape: it records the cluster as building,
// builds every server (and the warm spare, when asked) as BuildServer children all at once, so
// that they bootstrap in parallel and the cluster takes about as long as one server; then it
// sets the hosts up as real ones are: every DRBD pair configured through its resource file on
// both hosts (create-md, up, and the file server as the initial primary of the brand new
// pair), every pair checked in sync, the file server's md0 assembled over its DRBD devices
// (created the first time), its file system made, mounted and exported over NFS; and it
// records the replicas and the cluster live. Every step is idempotent: a second run, or a
// worker killed anywhere, creates nothing twice.
func BuildCluster(ctx workflow.Context, in BuildClusterInput) (BuildClusterResult, error) {
	tracker, err := NewTracker(ctx, BuildClusterSteps...)
	if err != nil {
		return BuildClusterResult{}, err
	}
	timing := in.Timing.withDefaults()
	plan := in.Plan
	callCtx := workflow.WithActivityOptions(ctx, timing.callOptions())
	hostCtx := workflow.WithActivityOptions(ctx, timing.hostOptions())
	res := BuildClusterResult{Instances: map[string]string{}, Volumes: map[string]string{}, Devices: map[string]string{}, Arrays: map[string][]string{},
		Mounts: map[string]string{}}
	fail := func(step string, err error) (BuildClusterResult, error) {
		tracker.Fail(step, err)
		return res, err
	}
	i := slices.IndexFunc(plan.Clusters, func(c activities.PlannedCluster) bool { return c.Name == in.Cluster })
	if i < 0 {
		return res, temporal.NewNonRetryableApplicationError("the plan has no cluster "+in.Cluster, activities.ErrInvalidInput, nil)
	}
	cluster := plan.Clusters[i]
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchCluster.ValueSet(cluster.Name), SearchZone.ValueSet(cluster.Zone))

	servers := plan.Servers
	rec := activities.FleetRecord{Zones: plan.Zones, Clusters: []activities.PlannedCluster{{Name: cluster.Name, Zone: cluster.Zone, Release: cluster.Release, State: anyops.ClusterBuilding}}}
	if in.Spare {
		standby, spare, ok := plan.SparePlan(cluster.Name)
		if !ok {
			return res, temporal.NewNonRetryableApplicationError("the plan of "+cluster.Name+" has no file server to make a spare like", activities.ErrInvalidInput, nil)
		}
		rec.Clusters = append(rec.Clusters, standby)
		servers = append(slices.Clone(servers), spare)
		res.Spare = spare.Name
	}
	tracker.Start(stepRecordCluster, "recording "+cluster.Name+" as building")
	if err := workflow.ExecuteActivity(callCtx, recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return fail(stepRecordCluster, err)
	}
	tracker.Done(stepRecordCluster, fmt.Sprintf("%s in %s, %d servers", cluster.Name, cluster.Zone, len(servers)))

	tracker.Start(stepBuildServers, fmt.Sprintf("building %d servers in parallel", len(servers)))
	built := map[string]BuiltServer{}
	if err := together(ctx, servers, func(s activities.PlannedServer) string { return s.Name }, func(s activities.PlannedServer) workflow.Future {
		var vols []activities.PlannedVolume
		for _, v := range plan.Volumes {
			if v.Server == s.Name {
				vols = append(vols, v)
			}
		}
		return workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: BuildServerWorkflowID(s.Name), WorkflowExecutionTimeout: timing.BuildTimeout + timing.WaitTimeout,
		}), BuildServerWorkflowType, BuildServerInput{Scope: in.Scope, Server: s, ImageID: in.ImageID, Volumes: vols, Timing: in.Timing})
	}, func(s activities.PlannedServer, f workflow.Future) error {
		var b BuiltServer
		if err := f.Get(ctx, &b); err != nil {
			return err
		}
		built[s.Name] = b
		res.Instances[s.Name] = b.InstanceID
		for name, id := range b.Volumes {
			res.Volumes[name] = id
			res.Devices[name] = b.Devices[name].Device
		}
		return nil
	}); err != nil {
		return fail(stepBuildServers, err)
	}
	tracker.Done(stepBuildServers, fmt.Sprintf("%d servers built and bootstrapped", len(built)))

	pairs := planPairs(plan, built)
	tracker.Start(stepConfigDRBD, fmt.Sprintf("configuring %d DRBD pairs: resource files, metadata, up, initial primary", len(pairs)))
	if err := tagDRBDPeers(ctx, callCtx, pairs); err != nil {
		return fail(stepConfigDRBD, err)
	}
	if err := setUpDRBD(ctx, hostCtx, pairs, true, true); err != nil {
		return fail(stepConfigDRBD, err)
	}
	if err := together(ctx, pairs, func(p drbdPair) string { return p.Resource }, func(p drbdPair) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.DRBDInitialPrimary, activities.DRBDInitialPrimaryInput{
			Resource: p.Resource, Primary: p.Primary.InstanceID, Secondary: p.Secondary.InstanceID, SkipInitialSync: true,
		})
	}, nil); err != nil {
		return fail(stepConfigDRBD, err)
	}
	tracker.Done(stepConfigDRBD, fmt.Sprintf("%d DRBD pairs configured", len(pairs)))

	tracker.Start(stepCheckDRBD, fmt.Sprintf("checking %d DRBD pairs on their primaries", len(pairs)))
	statuses, err := checkDRBD(ctx, hostCtx, pairs, timing)
	res.DRBDInSync = len(statuses)
	if err != nil {
		return fail(stepCheckDRBD, err)
	}
	tracker.Done(stepCheckDRBD, fmt.Sprintf("%d of %d DRBD pairs in sync", res.DRBDInSync, len(pairs)))

	arrays := planArrays(plan)
	tracker.Start(stepArrays, fmt.Sprintf("assembling %d md arrays over their DRBD devices", len(arrays)))
	for _, a := range arrays {
		if err := workflow.ExecuteActivity(hostCtx, recHosts.EnsureRAID, activities.EnsureRAIDInput{
			InstanceID: res.Instances[a.server], Device: a.device, Level: "0", Members: a.members,
		}).Get(ctx, nil); err != nil {
			return fail(stepArrays, fmt.Errorf("%s on %s: %w", a.device, a.server, err))
		}
		res.Arrays[a.server+":"+a.device] = a.members
	}
	tracker.Done(stepArrays, fmt.Sprintf("%d md arrays running", len(arrays)))

	tracker.Start(stepExports, fmt.Sprintf("making, mounting and exporting %d file systems", len(arrays)))
	for _, a := range arrays {
		if err := exportArray(hostCtx, ctx, res.Instances[a.server], a, true); err != nil {
			return fail(stepExports, fmt.Errorf("%s on %s: %w", a.device, a.server, err))
		}
		res.Exports = append(res.Exports, a.server+":"+a.mountPoint)
	}
	tracker.Done(stepExports, fmt.Sprintf("exported %v", res.Exports))

	if len(arrays) != 1 {
		return fail(stepFileService, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the plan of %s has %d arrays to serve, not one", cluster.Name, len(arrays)), activities.ErrInvalidInput, nil))
	}
	fileServer := built[arrays[0].server]
	res.FileService, res.FileServerIP = anyops.FileServiceName(cluster.Name), fileServer.PrivateIP
	tracker.Start(stepFileService, fmt.Sprintf("pointing %s at %s (%s)", res.FileService, fileServer.Name, fileServer.PrivateIP))
	zone, err := pointFileService(ctx, callCtx, timing, in.Scope, cluster.Name, fileServer.VPCID, fileServer.PrivateIP)
	if err != nil {
		return fail(stepFileService, err)
	}
	res.HostedZoneID = zone
	tracker.Done(stepFileService, fmt.Sprintf("%s is %s, in sync", res.FileService, fileServer.PrivateIP))

	var clients []BuiltServer
	for _, s := range plan.Servers {
		if s.Cluster == cluster.Name && isClientRole(s.Role) {
			clients = append(clients, built[s.Name])
		}
	}
	tracker.Start(stepMountClients, fmt.Sprintf("mounting %s on %d clients", anyops.FileServiceSource(cluster.Name), len(clients)))
	nfsCtx := workflow.WithActivityOptions(ctx, timing.longHostOptions(timing.ClientTimeout))
	if err := together(ctx, clients, func(c BuiltServer) string { return c.Name }, func(c BuiltServer) workflow.Future {
		return workflow.ExecuteActivity(nfsCtx, recHosts.MountNFS, activities.MountNFSInput{InstanceID: c.InstanceID,
			Source: anyops.FileServiceSource(cluster.Name), ExpectedServer: fileServer.PrivateIP, Timeout: timing.onHost(timing.ClientTimeout)})
	}, func(c BuiltServer, f workflow.Future) error {
		var m activities.MountNFSOutput
		if err := f.Get(ctx, &m); err != nil {
			return err
		}
		res.Mounts[c.Name] = m.Mount.Server
		return nil
	}); err != nil {
		return fail(stepMountClients, err)
	}
	tracker.Done(stepMountClients, fmt.Sprintf("%d clients mount %s", len(clients), res.FileService))

	tracker.Start(stepClusterLive, "recording the replicas and "+cluster.Name+" live")
	live := activities.FleetRecord{Clusters: []activities.PlannedCluster{{Name: cluster.Name, Zone: cluster.Zone, Release: cluster.Release, State: anyops.ClusterLive}}}
	for _, p := range pairs {
		st := statuses[p.Resource]
		live.Replicas = append(live.Replicas, activities.ReplicaRecord{Name: p.Resource, Cluster: cluster.Name,
			PrimaryServer: p.Primary.Server, SecondaryServer: p.Secondary.Server,
			PrimaryVolume: p.Primary.VolumeID, SecondaryVolume: p.Secondary.VolumeID, Status: &st})
	}
	if err := workflow.ExecuteActivity(callCtx, recInv.RecordFleet, live).Get(ctx, nil); err != nil {
		return fail(stepClusterLive, err)
	}
	tracker.Done(stepClusterLive, cluster.Name+" live")
	tracker.Finish(fmt.Sprintf("cluster %s ready: %d instances, %d data volumes, %d DRBD pairs in sync, exports %v",
		cluster.Name, len(res.Instances), len(res.Volumes), res.DRBDInSync, res.Exports))
	return res, nil
}

// isClientRole says whether servers of the role mount the file service.
func isClientRole(r anyops.Role) bool {
	return r == anyops.RoleWeb || r == anyops.RoleConsole || r == anyops.RoleTask
}

// pointFileService makes the cluster's private zone (once: its caller reference comes from the
// step and scope), points the file service's name at ip and waits until both are INSYNC, so
// that every resolver answers with it. It returns the zone's id.
func pointFileService(ctx, callCtx workflow.Context, timing RecoveryTiming, scope, cluster, vpc, ip string) (string, error) {
	var zone activities.HostedZone
	if err := workflow.ExecuteActivity(callCtx, recCloud.EnsurePrivateZone, activities.EnsurePrivateZoneInput{
		Scope: scope, Step: "zone/" + cluster, Name: anyops.FileServiceZone(cluster), VPCID: vpc, Comment: "names of cluster " + cluster,
	}).Get(ctx, &zone); err != nil {
		return "", fmt.Errorf("zone %s: %w", anyops.FileServiceZone(cluster), err)
	}
	change, err := switchFileService(ctx, callCtx, zone.ID, cluster, ip)
	if err != nil {
		return zone.ID, err
	}
	dnsCtx := workflow.WithActivityOptions(ctx, timing.boundedWaitOptions(timing.DNSTimeout))
	for _, id := range []string{zone.ChangeID, change.ChangeID} {
		if id == "" {
			continue
		}
		if err := workflow.ExecuteActivity(dnsCtx, recCloud.WaitRecordInSync, activities.WaitRecordInput{ChangeID: id, PollInterval: timing.PollInterval}).Get(ctx, nil); err != nil {
			return zone.ID, fmt.Errorf("change %s: %w", id, err)
		}
	}
	return zone.ID, nil
}

// switchFileService points the file service's name at ip (an UPSERT: the same value again is
// no change).
func switchFileService(ctx, callCtx workflow.Context, zoneID, cluster, ip string) (activities.RecordChange, error) {
	var change activities.RecordChange
	err := workflow.ExecuteActivity(callCtx, recCloud.SwitchRecord, activities.SwitchRecordInput{
		HostedZoneID: zoneID, Name: anyops.FileServiceName(cluster), TTL: anyops.FileServiceTTL, Values: []string{ip},
		Comment: "the file service of " + cluster + " is " + ip,
	}).Get(ctx, &change)
	if err != nil {
		return change, fmt.Errorf("point %s at %s: %w", anyops.FileServiceName(cluster), ip, err)
	}
	return change, nil
}

// drbdSide is one side of a DRBD pair: the server, its instance as its host names itself, and
// the volume backing the resource there.
type drbdSide struct {
	Server     string `json:"server"`
	InstanceID string `json:"instance_id"`
	Hostname   string `json:"hostname"`
	IP         string `json:"ip"`
	VolumeID   string `json:"volume_id"`
	// Disk is the backing device as configuration names it: the stable by-id link on Nitro.
	Disk string `json:"disk"`
	// NodeID is the side's DRBD node id, which its metadata keeps: a server that takes a
	// side's place takes its node id.
	NodeID int `json:"node_id"`
}

// drbdPair is one DRBD resource: its minor (and port offset) and its two sides, Primary the
// side whose data is the data.
type drbdPair struct {
	Resource  string   `json:"resource"`
	Minor     int      `json:"minor"`
	Primary   drbdSide `json:"primary"`
	Secondary drbdSide `json:"secondary"`
}

// The cluster's DRBD and NFS settings.
const (
	// drbdBasePort is the TCP port of the first DRBD resource; each next one takes the next.
	drbdBasePort = 7789
	// demoNFSClients are the clients of the file server's exports: cloudsim's VPC.
	demoNFSClients = "10.0.0.0/16"
	demoNFSOptions = "rw,sync,no_subtree_check"
)

// config is the resource file of the pair, the same on both hosts: disks by their stable
// by-id links, hosts by the names they give themselves, nodes in the order of their ids.
func (p drbdPair) config() activities.DRBDResourceConfig {
	node := func(s drbdSide) activities.DRBDNode {
		return activities.DRBDNode{Hostname: s.Hostname, Address: s.IP, NodeID: s.NodeID, Disk: s.Disk}
	}
	nodes := []activities.DRBDNode{node(p.Primary), node(p.Secondary)}
	if nodes[1].NodeID < nodes[0].NodeID {
		nodes[0], nodes[1] = nodes[1], nodes[0]
	}
	return activities.DRBDResourceConfig{Name: p.Resource, Minor: p.Minor, Port: drbdBasePort + p.Minor, Nodes: nodes}
}

// planPairs are the plan's DRBD resources in order, with their sides as built; a resource's
// minor is its position in the plan's sorted list.
func planPairs(plan activities.FleetPlan, built map[string]BuiltServer) []drbdPair {
	side := func(v activities.PlannedVolume) drbdSide {
		b := built[v.Server]
		return drbdSide{Server: v.Server, InstanceID: b.InstanceID, Hostname: b.Hostname, IP: b.PrivateIP,
			VolumeID: b.Volumes[v.Name], Disk: b.Devices[v.Name].StablePath()}
	}
	var out []drbdPair
	for i, name := range plan.DRBDResources() {
		p := drbdPair{Resource: name, Minor: i}
		for _, v := range plan.Volumes {
			switch {
			case v.DRBDResource != name:
			case v.DRBDRole == activities.DRBDPrimary:
				p.Primary = side(v)
			default:
				p.Secondary = side(v)
				p.Secondary.NodeID = 1 // a build's primary is node 0
			}
		}
		out = append(out, p)
	}
	return out
}

// tagDRBDPeers tags each backing volume with its DRBD pair as the inventory reads it: the
// resource, this side's role and the other side's instance.
func tagDRBDPeers(ctx, callCtx workflow.Context, pairs []drbdPair) error {
	type tagging struct {
		side, peer drbdSide
		role       string
		resource   string
	}
	var all []tagging
	for _, p := range pairs {
		all = append(all, tagging{p.Primary, p.Secondary, activities.DRBDPrimary, p.Resource}, tagging{p.Secondary, p.Primary, activities.DRBDSecondary, p.Resource})
	}
	return together(ctx, all, func(t tagging) string { return t.side.VolumeID }, func(t tagging) workflow.Future {
		return workflow.ExecuteActivity(callCtx, recCloud.TagResource, activities.TagResourceInput{ResourceID: t.side.VolumeID, Tags: map[string]string{
			anyops.TagDRBDResource: t.resource, anyops.TagDRBDRole: t.role, anyops.TagDRBDPeer: t.peer.InstanceID,
		}})
	}, nil)
}

// setUpDRBD writes every pair's resource file on the sides asked for (an up resource is
// adjusted to it), creates metadata where there is none (never over metadata or data), and
// brings the resources up: each phase across all pairs at once.
func setUpDRBD(ctx, hostCtx workflow.Context, pairs []drbdPair, primaries, secondaries bool) error {
	type side struct {
		pair drbdPair
		at   drbdSide
	}
	var sides []side
	for _, p := range pairs {
		if primaries {
			sides = append(sides, side{p, p.Primary})
		}
		if secondaries {
			sides = append(sides, side{p, p.Secondary})
		}
	}
	phases := []struct {
		name  string
		start func(side) workflow.Future
	}{
		{"resource file", func(s side) workflow.Future {
			return workflow.ExecuteActivity(hostCtx, recHosts.ConfigureDRBD, activities.ConfigureDRBDInput{InstanceID: s.at.InstanceID, Resource: s.pair.config()})
		}},
		{"create-md", func(s side) workflow.Future {
			return workflow.ExecuteActivity(hostCtx, recHosts.CreateDRBDMetadata, activities.DRBDResourceInput{InstanceID: s.at.InstanceID, Resource: s.pair.Resource})
		}},
		{"up", func(s side) workflow.Future {
			return workflow.ExecuteActivity(hostCtx, recHosts.DRBDUp, activities.DRBDResourceInput{InstanceID: s.at.InstanceID, Resource: s.pair.Resource})
		}},
	}
	for _, ph := range phases {
		if err := together(ctx, sides, func(s side) string { return s.pair.Resource + " on " + s.at.Server }, ph.start, nil); err != nil {
			return fmt.Errorf("%s: %w", ph.name, err)
		}
	}
	return nil
}

// drbdCheckAttempts bounds how often check-drbd looks again for pairs not yet in sync.
const drbdCheckAttempts = 10

// ErrDRBDNotInSync is the error type of a build whose DRBD pairs did not come up.
const ErrDRBDNotInSync = "DRBDNotInSync"

// checkDRBD reads `drbdadm status` on every primary until every pair is in sync, polling at
// the timing's interval, and returns the status of each pair in sync.
func checkDRBD(ctx, hostCtx workflow.Context, pairs []drbdPair, timing RecoveryTiming) (map[string]activities.DRBDResource, error) {
	var primaries []string
	for _, p := range pairs {
		if !slices.Contains(primaries, p.Primary.InstanceID) {
			primaries = append(primaries, p.Primary.InstanceID)
		}
	}
	for attempt := 1; ; attempt++ {
		inSync := map[string]activities.DRBDResource{}
		for _, inst := range primaries {
			var out activities.DRBDStatusOutput
			if err := workflow.ExecuteActivity(hostCtx, recHosts.DRBDStatus, activities.DRBDStatusInput{InstanceID: inst}).Get(ctx, &out); err != nil {
				return inSync, fmt.Errorf("drbdadm status on %s: %w", inst, err)
			}
			for _, r := range out.Resources {
				for _, p := range pairs {
					if r.Name == p.Resource && p.Primary.InstanceID == inst && r.InSync() {
						inSync[r.Name] = r
					}
				}
			}
		}
		if len(inSync) == len(pairs) {
			return inSync, nil
		}
		if attempt == drbdCheckAttempts {
			return inSync, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%d of %d DRBD pairs in sync after %d checks", len(inSync), len(pairs), attempt), ErrDRBDNotInSync, nil)
		}
		if err := workflow.Sleep(ctx, timing.PollInterval); err != nil {
			return inSync, err
		}
	}
}

// mdArray is an md array on the server that holds its members' DRBD primaries.
type mdArray struct {
	server, device, mountPoint string
	members                    []string
}

// planArrays are the plan's md arrays over DRBD devices, on the servers holding the primaries
// (the backup holds the same superblocks, replicated, for the day it takes over). Members go in
// the plan's order; an array is mounted at /srv/<kind of its volumes>.
func planArrays(plan activities.FleetPlan) []mdArray {
	minor := map[string]int{}
	for i, name := range plan.DRBDResources() {
		minor[name] = i
	}
	var out []mdArray
	for _, v := range plan.Volumes {
		if v.RAIDGroup == "" || v.DRBDRole != activities.DRBDPrimary {
			continue
		}
		dev := "/dev/" + v.RAIDGroup
		i := slices.IndexFunc(out, func(a mdArray) bool { return a.server == v.Server && a.device == dev })
		if i < 0 {
			out = append(out, mdArray{server: v.Server, device: dev, mountPoint: "/srv/" + string(v.Kind)})
			i = len(out) - 1
		}
		out[i].members = append(out[i].members, fmt.Sprintf("/dev/drbd%d", minor[v.DRBDResource]))
	}
	return out
}

// exportArray makes the array's file system (only when mkfs is true: a build's new array; a
// takeover never makes one), mounts it and exports it over NFS.
func exportArray(actCtx, ctx workflow.Context, instance string, a mdArray, mkfs bool) error {
	if mkfs {
		if err := workflow.ExecuteActivity(actCtx, recHosts.MakeFilesystem, activities.MakeFilesystemInput{
			InstanceID: instance, Device: a.device, FSType: "ext4",
		}).Get(ctx, nil); err != nil {
			return fmt.Errorf("mkfs: %w", err)
		}
	}
	if err := workflow.ExecuteActivity(actCtx, recHosts.Mount, activities.MountInput{
		InstanceID: instance, Device: a.device, MountPoint: a.mountPoint, FSType: "ext4",
	}).Get(ctx, nil); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	if err := workflow.ExecuteActivity(actCtx, recHosts.ExportNFS, activities.NFSExportInput{
		InstanceID: instance, Path: a.mountPoint, Clients: demoNFSClients, Options: demoNFSOptions,
	}).Get(ctx, nil); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
