package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/uuid"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/inventory"
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
// each data volume attached to its server at its device — and the hosts are set up as real
// ones: NVMe devices found by volume id, every DRBD pair configured by files and in sync, md0
// assembled over the DRBD devices, mounted and exported; that the Status query reports every
// step done; and that a second run with the same workflow id (what `anyops dev` does at every
// start) finds the same resources and creates none, on the hosts neither.
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

	checkDemoHosts(t, e, first)
	// The demo web apps (FleetPatch's notices go to their custom domains' owners) come with it.
	if apps, err := e.store.ListWebApps(context.Background(), nil, false); err != nil || len(apps) != len(inventory.DemoWebApps()) {
		t.Errorf("web apps %v, %v; want the %d demo apps", apps, err, len(inventory.DemoWebApps()))
	}
	setUp := hostSetupEvents(e.sim)
	if want := map[string]int{"drbd.create-md": 2 * len(plan.DRBDResources()), "drbd.new-current-uuid": len(plan.DRBDResources()),
		"md.created": 1, "host.mkfs": 1}; !maps.Equal(setUp, want) {
		t.Errorf("host set-up events %v, want %v: each host step done once", setUp, want)
	}

	var second DemoFleetResult
	e.run(t, "DemoFleet", id, DemoFleetInput{Timing: fastTiming}, &second)
	if again := hostSetupEvents(e.sim); !maps.Equal(again, setUp) {
		t.Errorf("second run: host set-up events %v, were %v: it made metadata, an array or a file system again", again, setUp)
	}
	checkDemoHosts(t, e, second)
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

// hostView is the part of cloudsim's GET /_sim/hosts/{id} the demo checks read.
type hostView struct {
	Devices map[string]string `json:"devices"`
	DRBD    map[string]struct {
		Role, Disk string
		Connected  bool
		Minor      int
	} `json:"drbd"`
	MD map[string]struct {
		Devices []string
		Active  bool
	} `json:"md"`
	Mounts  map[string]struct{ Device, FSType string } `json:"mounts"`
	Exports map[string]string                          `json:"exports"`
}

func getHost(t *testing.T, endpoint, instance string) hostView {
	t.Helper()
	resp, err := http.Get(endpoint + "/_sim/hosts/" + instance)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h hostView
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /_sim/hosts/%s: %s %v", instance, resp.Status, err)
	}
	return h
}

// checkDemoHosts proves what the demo's hosts look like once DemoFleet is done: every volume
// seen as an NVMe device (m5 and c5 are Nitro) under the name the result reports; on the file
// server every DRBD resource Primary, UpToDate and connected, md0 active over /dev/drbd0…3,
// mounted at /srv/home and exported; on the backup the same resources Secondary and UpToDate,
// and no array running.
func checkDemoHosts(t *testing.T, e *fleetEnv, res DemoFleetResult) {
	t.Helper()
	plan := activities.DemoFleetPlan()
	file := getHost(t, e.endpoint, res.Instances[inventory.DemoFileServer])
	backup := getHost(t, e.endpoint, res.Instances[inventory.DemoBackup])
	views := map[string]hostView{inventory.DemoFileServer: file, inventory.DemoBackup: backup}
	for _, v := range plan.Volumes {
		dev := res.Devices[v.Name]
		if !regexp.MustCompile(`^/dev/nvme[1-9][0-9]*n1$`).MatchString(dev) {
			t.Errorf("volume %s (attached as %s) is %q on its host, want an NVMe device", v.Name, v.Device, dev)
		}
		if h, ok := views[v.Server]; ok && h.Devices[dev] != res.Volumes[v.Name] {
			t.Errorf("%s's host has %s as %s, the result says %s", v.Server, h.Devices[dev], dev, res.Volumes[v.Name])
		}
	}
	var members []string
	for i, name := range plan.DRBDResources() {
		members = append(members, fmt.Sprintf("/dev/drbd%d", i))
		p, s := file.DRBD[name], backup.DRBD[name]
		if p.Role != "Primary" || p.Disk != "UpToDate" || !p.Connected || s.Role != "Secondary" || s.Disk != "UpToDate" || !s.Connected || p.Minor != i {
			t.Errorf("DRBD %s: file server %+v, backup %+v; want Primary/Secondary, both UpToDate and connected, minor %d", name, p, s, i)
		}
	}
	if md := file.MD["/dev/md0"]; !md.Active || !slices.Equal(md.Devices, members) || !slices.Equal(res.Arrays[inventory.DemoFileServer+":/dev/md0"], members) {
		t.Errorf("md0 on the file server: %+v, result %v; want active over %v", md, res.Arrays, members)
	}
	if m := file.Mounts["/srv/home"]; m.Device != "/dev/md0" || m.FSType != "ext4" {
		t.Errorf("/srv/home on the file server: %+v, want /dev/md0 ext4", m)
	}
	if _, ok := file.Exports["10.0.0.0/16:/srv/home"]; !ok || !slices.Equal(res.Exports, []string{inventory.DemoFileServer + ":/srv/home"}) {
		t.Errorf("exports %v, result %v; want /srv/home to 10.0.0.0/16", file.Exports, res.Exports)
	}
	var clients int
	for _, s := range plan.Servers {
		if isClientRole(s.Role) {
			clients++
			if res.Mounts[s.Name] != res.FileServerIP {
				t.Errorf("client %s mounts %s from %q, want the file server %s", s.Name, res.FileService, res.Mounts[s.Name], res.FileServerIP)
			}
		}
	}
	if clients == 0 || len(res.Mounts) != clients || res.FileService != "files.live.internal" || res.HostedZoneID == "" {
		t.Errorf("file service %q in zone %q mounted by %v; want files.live.internal on each of %d clients", res.FileService, res.HostedZoneID, res.Mounts, clients)
	}
	for name, md := range backup.MD {
		if md.Active {
			t.Errorf("the backup runs %s; its DRBD devices are Secondary", name)
		}
	}
}

// hostSetupEvents counts the events of the host steps that must happen once.
func hostSetupEvents(sim *cloudsim.Sim) map[string]int {
	out := map[string]int{}
	for _, ev := range sim.Events(0, 0) {
		switch ev.Type {
		case "drbd.create-md", "drbd.new-current-uuid", "md.created", "host.mkfs":
			out[ev.Type]++
		}
	}
	return out
}
