package workflows

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/uuid"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// cloudCounts counts what the cloud holds: instances that are not terminated, by Name tag, and
// volumes, by id.
func cloudCounts(t *testing.T, c *ec2.Client) (instances map[string][]string, volumes []ec2VolumeView) {
	t.Helper()
	ctx := context.Background()
	instances = map[string][]string{}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if i.State != nil && i.State.Name == "terminated" {
				continue
			}
			name := ""
			for _, tag := range i.Tags {
				if aws.ToString(tag.Key) == activities.TagName {
					name = aws.ToString(tag.Value)
				}
			}
			instances[name] = append(instances[name], aws.ToString(i.InstanceId))
		}
	}
	vols, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		view := ec2VolumeView{ID: aws.ToString(v.VolumeId)}
		for _, tag := range v.Tags {
			if aws.ToString(tag.Key) == activities.TagName {
				view.Name = aws.ToString(tag.Value)
			}
		}
		for _, a := range v.Attachments {
			view.Instance, view.Device, view.Attachment = aws.ToString(a.InstanceId), aws.ToString(a.Device), string(a.State)
		}
		volumes = append(volumes, view)
	}
	return instances, volumes
}

type ec2VolumeView struct {
	ID, Name, Instance, Device, Attachment string
}

// TestDemoFleetBuildsFleetOnce runs DemoFleet on the real dev server against cloudsim. It
// proves the cloud then holds exactly the plan — one instance per server, its boot volume,
// each data volume attached to its server at its device — with every DRBD pair in sync, that
// the Status query reports every step done, and that a second run with the same workflow id
// (what `anyops dev` does at every start) finds the same resources and creates none.
func TestDemoFleetBuildsFleetOnce(t *testing.T) {
	e := newFleetEnv(t)
	plan := activities.DemoFleetPlan()
	id := DemoFleetWorkflowID + "-" + uuid.NewString()

	var first DemoFleetResult
	e.run(t, "DemoFleet", id, DemoFleetInput{Timing: fastTiming}, &first)
	if len(first.Instances) != len(plan.Servers) || len(first.Volumes) != len(plan.Volumes) || first.DRBDInSync != len(plan.DRBDResources()) {
		t.Fatalf("result %+v; want %d instances, %d volumes, %d DRBD pairs in sync", first, len(plan.Servers), len(plan.Volumes), len(plan.DRBDResources()))
	}
	instances, volumes := cloudCounts(t, e.aws.EC2)
	if len(instances) != len(plan.Servers) {
		t.Errorf("cloud has instances %v, want one per server", instances)
	}
	for name, ids := range instances {
		if len(ids) != 1 || first.Instances[name] != ids[0] {
			t.Errorf("server %s: cloud instances %v, workflow reported %s", name, ids, first.Instances[name])
		}
	}
	if want := len(plan.Servers) + len(plan.Volumes); len(volumes) != want {
		t.Errorf("cloud has %d volumes, want %d (a boot volume per server and the data volumes)", len(volumes), want)
	}
	byID := map[string]ec2VolumeView{}
	for _, v := range volumes {
		byID[v.ID] = v
	}
	for _, v := range plan.Volumes {
		got := byID[first.Volumes[v.Name]]
		if got.Name != v.Name || got.Instance != first.Instances[v.Server] || got.Device != v.Device || got.Attachment != "attached" {
			t.Errorf("volume %s in the cloud: %+v; want attached to %s at %s", v.Name, got, first.Instances[v.Server], v.Device)
		}
	}
	st := e.status(t, id)
	if st.Phase != PhaseDone || st.Progress != 1 || len(st.Steps) != len(DemoFleetSteps) {
		t.Errorf("final status %+v, want done with progress 1", st)
	}
	for _, s := range st.Steps {
		if s.State != StepDone {
			t.Errorf("step %s is %s, want done", s.Name, s.State)
		}
	}

	var second DemoFleetResult
	e.run(t, "DemoFleet", id, DemoFleetInput{Timing: fastTiming}, &second)
	for name, inst := range first.Instances {
		if second.Instances[name] != inst {
			t.Errorf("second run: %s is %s, first run made %s", name, second.Instances[name], inst)
		}
	}
	for name, vol := range first.Volumes {
		if second.Volumes[name] != vol {
			t.Errorf("second run: volume %s is %s, first run made %s", name, second.Volumes[name], vol)
		}
	}
	again, againVolumes := cloudCounts(t, e.aws.EC2)
	if len(again) != len(instances) || len(againVolumes) != len(volumes) {
		t.Errorf("second run changed the cloud: %d instances, %d volumes (was %d, %d)", len(again), len(againVolumes), len(instances), len(volumes))
	}
}

// TestDemoFleetPrepare proves the demo-fleet kind's input rules.
func TestDemoFleetPrepare(t *testing.T) {
	checkPrepare(t, KindDemoFleet, DemoFleetWorkflowID, []prepareCase{
		{"empty body", ``, "", nil},
		{"timing in nanoseconds", `{"timing":{"poll_interval":1000000000}}`, "", nil},
		{"image", `{"image_id":"ami-0123"}`, "", nil},
		{"negative timing", `{"timing":{"poll_interval":-1}}`, "timing.poll_interval", nil},
		{"timing above a day", `{"timing":{"wait_timeout":86400000000001}}`, "timing.wait_timeout", nil},
		{"actor from the body", `{"requested_by":"mallory"}`, "requested_by is set by the server", nil},
		{"unknown field", `{"servers":3}`, `unknown field "servers"`, nil},
		{"long image id", `{"image_id":"` + strings.Repeat("a", anyops.MaxNameLen+1) + `"}`, "image_id must be 1 to", nil},
		{"NUL in image id", `{"image_id":"ami-\u0000"}`, "image_id \"ami-\\x00\" may hold only", nil},
	})
}
