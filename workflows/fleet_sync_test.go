package workflows

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/uuid"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/inventory"
)

// TestFleetSyncReconcilesInventoryWithCloudsim builds the demo fleet in cloudsim and runs
// FleetSync on the real dev server. DemoFleet recorded what it built; the sync agrees with
// every row and adds only the boot volumes RunInstances made. It proves the inventory then
// matches the cloud (servers carry the instance ids DescribeInstances returns, replicas are
// in sync from the hosts' DRBD status), that a second sync finds no drift, and that after
// a hardware failure injected through /_sim/faults — seen as impaired by
// DescribeInstanceStatus — the next sync marks the server impaired and records the drift.
func TestFleetSyncReconcilesInventoryWithCloudsim(t *testing.T) {
	ctx := context.Background()
	e := newFleetEnv(t)
	var fleet DemoFleetResult
	e.run(t, "DemoFleet", DemoFleetWorkflowID+"-"+uuid.NewString(), DemoFleetInput{Timing: fastTiming}, &fleet)
	plan := activities.DemoFleetPlan()
	syncInput := FleetSyncInput{Timing: fastTiming, RequestedBy: "test"}

	var first FleetSyncResult
	e.run(t, "FleetSync", FleetSyncWorkflowID+"-"+uuid.NewString(), syncInput, &first)
	// A boot volume per server; the zone, release, cluster, servers, data volumes and replicas
	// DemoFleet recorded as it built them, as the sync finds them.
	wantCreated := len(plan.Servers)
	wantUnchanged := 3 + len(plan.Servers) + len(plan.Volumes) + len(plan.DRBDResources())
	if first.Counts.Created != wantCreated || first.Counts.Updated != 0 || first.Counts.Missing != 0 || len(first.Drift) != wantCreated ||
		first.Counts.Unchanged != wantUnchanged {
		t.Errorf("first sync %+v with %d drifts, want %d created and %d unchanged", first.Counts, len(first.Drift), wantCreated, wantUnchanged)
	}
	servers, _, err := e.store.ListServers(ctx, inventory.ServerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != len(plan.Servers) {
		t.Fatalf("inventory has %d servers, want %d", len(servers), len(plan.Servers))
	}
	for _, s := range servers {
		if s.InstanceID != fleet.Instances[s.Name] || s.State != anyops.ServerRunning {
			t.Errorf("server %s: instance %s state %s; cloud has %s running", s.Name, s.InstanceID, s.State, fleet.Instances[s.Name])
		}
	}
	inSync, _, err := e.store.ListReplicas(ctx, inventory.ReplicaFilter{State: anyops.ReplicaUpToDate})
	if err != nil || len(inSync) != len(plan.DRBDResources()) {
		t.Errorf("%d replicas up to date (%v), want %d", len(inSync), err, len(plan.DRBDResources()))
	}

	var second FleetSyncResult
	e.run(t, "FleetSync", FleetSyncWorkflowID+"-"+uuid.NewString(), syncInput, &second)
	// Everything the first sync created, and the zone it found in place, is unchanged.
	if len(second.Drift) != 0 || second.Counts.Unchanged != wantCreated+first.Counts.Unchanged {
		t.Errorf("second sync %+v drift %+v, want nothing changed", second.Counts, second.Drift)
	}

	file := fleet.Instances[inventory.DemoFileServer]
	e.injectFault(t, map[string]any{"type": "hardware-failure", "instance_id": file})
	st, err := e.aws.EC2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{file}})
	if err != nil || len(st.InstanceStatuses) != 1 || st.InstanceStatuses[0].SystemStatus.Status != "impaired" {
		t.Fatalf("DescribeInstanceStatus after the fault = %+v, %v; want the system check impaired", st, err)
	}
	var third FleetSyncResult
	e.run(t, "FleetSync", FleetSyncWorkflowID+"-"+uuid.NewString(), syncInput, &third)
	s, err := e.store.GetServer(ctx, inventory.DemoFileServer)
	if err != nil || s.State != anyops.ServerImpaired || s.ImpairedSince == nil {
		t.Fatalf("file server after the fault and a sync: %+v, %v; want impaired with impaired_since", s, err)
	}
	if since := st.InstanceStatuses[0].SystemStatus.Details[0].ImpairedSince; since == nil || !s.ImpairedSince.Equal(aws.ToTime(since)) {
		t.Errorf("impaired_since %v, cloud says %v", s.ImpairedSince, since)
	}
	if !slices.ContainsFunc(third.Drift, func(d activities.Drift) bool {
		return d.Entity == "server" && d.Key == inventory.DemoFileServer && d.Change == activities.DriftChanged && slices.Contains(d.Fields, "state")
	}) {
		t.Errorf("third sync drift %+v has no state change of %s", third.Drift, inventory.DemoFileServer)
	}
	events, _, err := e.store.ListAudit(ctx, inventory.Page{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(ev inventory.AuditEvent) bool {
		return ev.Action == activities.DriftAction && ev.Subject == "server/"+inventory.DemoFileServer && ev.Actor == "test"
	}) {
		t.Errorf("no drift event for the impaired server among the latest %+v", events)
	}
}

// TestFleetSyncPrepare proves the fleet-sync kind's input rules.
func TestFleetSyncPrepare(t *testing.T) {
	checkPrepare(t, KindFleetSync, FleetSyncWorkflowID, []prepareCase{
		{"empty body", ``, "", nil},
		{"timing", `{"timing":{"call_timeout":5000000000}}`, "", nil},
		{"negative timing", `{"timing":{"call_timeout":-5}}`, "timing.call_timeout", nil},
		{"actor from the body", `{"requested_by":"x"}`, "requested_by is set by the server", nil},
		{"unknown field", `{"reason":"x"}`, `unknown field "reason"`, nil},
	})
}

// shell runs a script on an instance through SSM and waits for it to succeed.
func (e *fleetEnv) shell(t *testing.T, instance string, lines ...string) {
	t.Helper()
	ctx := context.Background()
	out, err := e.aws.SSM.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"),
		InstanceIds: []string{instance}, Parameters: map[string][]string{"commands": lines}})
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		inv, err := e.aws.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: out.Command.CommandId, InstanceId: aws.String(instance)})
		if err == nil && inv.Status != "InProgress" && inv.Status != "Pending" {
			if inv.Status != "Success" {
				t.Fatalf("%q on %s: %s %s", lines, instance, inv.Status, aws.ToString(inv.StandardErrorContent))
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%q on %s never finished", lines, instance)
}

// TestFleetSyncReadsRolesFromHostsAndRetags builds the demo fleet in cloudsim, then promotes
// the backup as a failover does — the file server stops serving /srv/home (unexport, umount,
// stop md0, which hold its DRBD devices open), `drbdadm secondary` there, `drbdadm primary` on
// the backup — which changes no tag. It proves the next FleetSync records the backup as every
// replica's primary (read from both hosts' DRBD status, not from the tags), rewrites the
// volumes' anyops:drbd-role tags through the TagResource activity, and that the sync after it
// has nothing left to retag or record.
func TestFleetSyncReadsRolesFromHostsAndRetags(t *testing.T) {
	ctx := context.Background()
	e := newFleetEnv(t)
	var fleet DemoFleetResult
	e.run(t, "DemoFleet", DemoFleetWorkflowID+"-"+uuid.NewString(), DemoFleetInput{Timing: fastTiming}, &fleet)
	syncInput := FleetSyncInput{Timing: fastTiming, RequestedBy: "test"}
	var first FleetSyncResult
	e.run(t, "FleetSync", FleetSyncWorkflowID+"-"+uuid.NewString(), syncInput, &first)

	resources := activities.DemoFleetPlan().DRBDResources()
	file, backup := fleet.Instances[inventory.DemoFileServer], fleet.Instances[inventory.DemoBackup]
	e.shell(t, file, "exportfs -u "+demoNFSClients+":/srv/home", "umount /srv/home", "mdadm --stop /dev/md0")
	for _, r := range resources {
		e.shell(t, file, "drbdadm secondary "+r)
		e.shell(t, backup, "drbdadm primary "+r)
	}
	var promoted FleetSyncResult
	e.run(t, "FleetSync", FleetSyncWorkflowID+"-"+uuid.NewString(), syncInput, &promoted)
	for _, r := range resources {
		rep, err := e.store.GetReplica(ctx, r)
		if err != nil || rep.PrimaryServer != inventory.DemoBackup || rep.SecondaryServer != inventory.DemoFileServer {
			t.Errorf("replica %s after the promotion: %+v, %v; want %s primary", r, rep, err, inventory.DemoBackup)
		}
	}
	if len(promoted.RoleTagsUpdated) != 2*len(resources) || len(promoted.RoleTagsFailed) != 0 {
		t.Errorf("retagged %v (failed %v), want both volumes of the %d pairs", promoted.RoleTagsUpdated, promoted.RoleTagsFailed, len(resources))
	}
	vols, err := e.aws.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{anyops.TagDRBDResource}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		want := activities.DRBDSecondary
		if len(v.Attachments) > 0 && aws.ToString(v.Attachments[0].InstanceId) == backup {
			want = activities.DRBDPrimary
		}
		for _, tag := range v.Tags {
			if aws.ToString(tag.Key) == anyops.TagDRBDRole && aws.ToString(tag.Value) != want {
				t.Errorf("volume %s tagged %s=%s, want %s", aws.ToString(v.VolumeId), anyops.TagDRBDRole, aws.ToString(tag.Value), want)
			}
		}
	}
	var after FleetSyncResult
	e.run(t, "FleetSync", FleetSyncWorkflowID+"-"+uuid.NewString(), syncInput, &after)
	if len(after.RoleTagsUpdated) != 0 || len(after.Drift) != 0 {
		t.Errorf("the sync after: retagged %v, drift %+v; want nothing", after.RoleTagsUpdated, after.Drift)
	}
}
