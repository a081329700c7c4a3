package integration

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
)

// The worlds of the invariants' proofs (chaos_invariants_test.go): the least of a chaos world
// that a check reads, and the cloud and host calls that build and break them.

// frozenSpeed stands cloudsim's clock still: the invariants' worlds move it with Advance, so
// that what a host does (a resync, a command) happens exactly when a case lets it.
const frozenSpeed = 1e-9

// newInvariantWorld is the part of a chaos world the read-only checks use, without Temporal or
// a worker: cloudsim at frozenSpeed behind crash points on an endpoint (the checks' clients
// and the hosts' API reach it there) and an inventory in a database of its own on the test
// PostgreSQL server.
func newInvariantWorld(t *testing.T) *chaosWorld {
	t.Helper()
	w := &chaosWorld{t: t}
	w.startCloud(t, frozenSpeed)
	w.pg = &testenv.PostgresServer{DSN: testenv.Postgres(t)}
	return w
}

// runInstance launches one instance named name in zone with tags and lets it boot.
func (w *chaosWorld) runInstance(t *testing.T, name, zone string, tags map[string]string) string {
	t.Helper()
	out, err := w.clouds.EC2.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeM5Large, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement:         &types.Placement{AvailabilityZone: aws.String(zone)},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: ec2Tags(name, tags)}},
	})
	if err != nil {
		t.Fatalf("RunInstances %s: %v", name, err)
	}
	w.sim.Advance(time.Minute) // a boot takes 45 s
	return aws.ToString(out.Instances[0].InstanceId)
}

// terminate terminates an instance and lets it go.
func (w *chaosWorld) terminate(t *testing.T, inst string) {
	t.Helper()
	if _, err := w.clouds.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{inst}}); err != nil {
		t.Fatalf("TerminateInstances %s: %v", inst, err)
	}
	w.sim.Advance(time.Minute)
}

// createVolume creates a 10 GiB volume named name in zone with tags and lets it become
// available.
func (w *chaosWorld) createVolume(t *testing.T, name, zone string, tags map[string]string) string {
	t.Helper()
	out, err := w.clouds.EC2.CreateVolume(context.Background(), &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String(zone), Size: aws.Int32(10), VolumeType: types.VolumeTypeGp3,
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: ec2Tags(name, tags)}},
	})
	if err != nil {
		t.Fatalf("CreateVolume %s: %v", name, err)
	}
	w.sim.Advance(15 * time.Second) // a volume takes 10 s
	return aws.ToString(out.VolumeId)
}

// deleteVolume deletes a volume.
func (w *chaosWorld) deleteVolume(t *testing.T, vol string) {
	t.Helper()
	if _, err := w.clouds.EC2.DeleteVolume(context.Background(), &ec2.DeleteVolumeInput{VolumeId: aws.String(vol)}); err != nil {
		t.Fatalf("DeleteVolume %s: %v", vol, err)
	}
	w.sim.Advance(15 * time.Second)
}

// attachVolume attaches a volume and lets the host see it.
func (w *chaosWorld) attachVolume(t *testing.T, vol, inst, device string) {
	t.Helper()
	if _, err := w.clouds.EC2.AttachVolume(context.Background(), &ec2.AttachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(inst), Device: aws.String(device)}); err != nil {
		t.Fatalf("AttachVolume %s to %s: %v", vol, inst, err)
	}
	w.sim.Advance(10 * time.Second) // an attach takes 5 s
}

// shell runs a script on each instance at once through SSM, moving the clock a second at a
// time until every one has ended, and fails the test unless each exits 0.
func (w *chaosWorld) shell(t *testing.T, script string, insts ...string) {
	t.Helper()
	ctx := context.Background()
	ids := map[string]*string{}
	for _, inst := range insts {
		out, err := w.clouds.SSM.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"),
			InstanceIds: []string{inst}, Parameters: map[string][]string{"commands": {script}}})
		if err != nil {
			t.Fatalf("SendCommand %q: %v", script, err)
		}
		ids[inst] = out.Command.CommandId
	}
	for range 600 {
		for inst, id := range ids {
			inv, err := w.clouds.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: id, InstanceId: aws.String(inst)})
			if err != nil {
				t.Fatalf("GetCommandInvocation: %v", err)
			}
			if inv.Status == "InProgress" || inv.Status == "Pending" {
				continue
			}
			if inv.ResponseCode != 0 {
				t.Fatalf("%q on %s: exit %d\n%s%s", script, inst, inv.ResponseCode, aws.ToString(inv.StandardOutputContent), aws.ToString(inv.StandardErrorContent))
			}
			delete(ids, inst)
		}
		if len(ids) == 0 {
			return
		}
		w.sim.Advance(time.Second)
	}
	t.Fatalf("%q never ended on %v", script, insts)
}

// ec2Tags is the Name tag (none when empty) and the others.
func ec2Tags(name string, tags map[string]string) []types.Tag {
	var out []types.Tag
	if name != "" {
		out = append(out, types.Tag{Key: aws.String(activities.TagName), Value: aws.String(name)})
	}
	for k, v := range tags {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out
}

// inCluster tags a resource as the cluster's, with more tags.
func inCluster(cluster string, more map[string]string) map[string]string {
	out := map[string]string{anyops.TagCluster: cluster}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// drbdPairRes is the DRBD resource of drbdPair.
const drbdPairRes = inventory.DemoCluster + "-home0"

// drbdPair is the demo cluster's file server and hot backup with one DRBD resource between
// them, brought up by cloudsim's fixture tags: the file server Primary, and the backup
// resyncing the whole device from it (a new pair's day 0: about 100 simulated seconds), in
// sync when inSync. The file server is made Primary again by drbdadm once the backup is in
// sync (or still resyncs), so that the event log has the promotion the replays read. It
// returns the two instances.
func (w *chaosWorld) drbdPair(t *testing.T, inSync bool) (file, backup string) {
	t.Helper()
	file = w.runInstance(t, inventory.DemoFileServer, "us-east-1a", inCluster(inventory.DemoCluster, nil))
	backup = w.runInstance(t, inventory.DemoBackup, "us-east-1b", inCluster(inventory.DemoCluster, nil))
	side := func(peer, role string) map[string]string {
		return inCluster(inventory.DemoCluster, map[string]string{anyops.TagDRBDResource: drbdPairRes, anyops.TagDRBDPeer: peer, cloudsim.FixtureTagDRBDRole: role})
	}
	fv := w.createVolume(t, inventory.DemoFileServer+"/home0", "us-east-1a", side(backup, "primary"))
	bv := w.createVolume(t, inventory.DemoBackup+"/home0", "us-east-1b", side(file, "secondary"))
	w.attachVolume(t, fv, file, "/dev/sdf")
	w.attachVolume(t, bv, backup, "/dev/sdf")
	if inSync {
		w.sim.Advance(3 * time.Minute)
	}
	w.shell(t, "drbdadm secondary "+drbdPairRes+" && drbdadm primary "+drbdPairRes, file)
	return file, backup
}

// recordServer records a server in the inventory, with its zone and the demo cluster.
func (w *chaosWorld) recordServer(t *testing.T, name string, role anyops.Role, zone, instanceID string) {
	t.Helper()
	ctx := context.Background()
	store := w.mustOpenStore(t)
	if _, err := store.UpsertZone(ctx, inventory.Zone{Name: zone, Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpsertCluster(ctx, inventory.Cluster{Name: inventory.DemoCluster, Zone: zone, State: anyops.ClusterLive}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpsertServer(ctx, inventory.Server{Name: name, Role: role, Zone: zone, Cluster: inventory.DemoCluster, State: anyops.ServerRunning, InstanceID: instanceID}); err != nil {
		t.Fatal(err)
	}
}

// serveHome makes an instance serve /srv/home as a file server does: md0 (over a volume that
// cloudsim's fixture tag makes its member) made a file system, mounted and exported.
func (w *chaosWorld) serveHome(t *testing.T, inst, zone string) {
	t.Helper()
	v := w.createVolume(t, "", zone, inCluster(inventory.DemoCluster, map[string]string{cloudsim.FixtureTagRAID: "md0"}))
	w.attachVolume(t, v, inst, "/dev/sdg")
	w.shell(t, "mdadm --assemble /dev/md0 --scan && mkfs.ext4 -q /dev/md0 && mount /dev/md0 /srv/home && exportfs -o rw 10.0.0.0/16:/srv/home", inst)
}
