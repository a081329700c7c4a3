package cloudsim

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestStateSurvivesRestart proves a new Sim on the same state file has the fleet, the clock,
// the faults and the ClientTokens of the old one.
func TestStateSurvivesRestart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "cloudsim.json")
	sim1, err := New(Config{StateFile: state, Speed: frozen})
	if err != nil {
		t.Fatal(err)
	}
	srv1 := newServer(t, sim1)
	f1 := clientsFor(t, sim1, srv1)
	run, err := f1.ec2.RunInstances(f1.ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String("keep")})
	if err != nil {
		t.Fatal(err)
	}
	id := *run.Instances[0].InstanceId
	sim1.Advance(time.Hour)
	if _, err := sim1.InjectFault(Fault{Type: FaultHardwareFailure, InstanceID: id}); err != nil {
		t.Fatal(err)
	}
	clock1 := sim1.Now()
	if err := sim1.Close(); err != nil {
		t.Fatal(err)
	}

	sim2, err := New(Config{StateFile: state, Speed: frozen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim2.Close() })
	f2 := clientsFor(t, sim2, newServer(t, sim2))
	if got := f2.instance(t, id); got.State.Name != ec2types.InstanceStateNameRunning {
		t.Fatalf("instance after restart: %s", got.State.Name)
	}
	if now := sim2.Now(); now.Before(clock1) {
		t.Fatalf("clock went back across the restart: %s < %s", now, clock1)
	}
	st, _ := f2.ec2.DescribeInstanceStatus(f2.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}})
	if st.InstanceStatuses[0].SystemStatus.Status != ec2types.SummaryStatusImpaired {
		t.Fatalf("the hardware fault did not survive the restart")
	}
	again, err := f2.ec2.RunInstances(f2.ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String("keep")})
	if err != nil || *again.Instances[0].InstanceId != id {
		t.Fatalf("ClientToken after restart: %v, %+v", err, again)
	}
	// A fresh id must not collide with one made before the restart.
	vol := f2.createVolume(t, "us-east-1a", 1, nil)
	if vol == *f2.instance(t, id).BlockDeviceMappings[0].Ebs.VolumeId {
		t.Fatalf("id reused after restart: %s", vol)
	}
}

func newServer(t *testing.T, s *Sim) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestStateFileIsWrittenWhileRunning proves the debounced saver writes changes without a
// Close, so a killed cloudsim loses at most a moment.
func TestStateFileIsWrittenWhileRunning(t *testing.T) {
	state := filepath.Join(t.TempDir(), "sub", "state.json")
	f := newFixture(t, Config{StateFile: state, Speed: frozen})
	vol := f.createVolume(t, "us-east-1a", 5, nil)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(state); err == nil && strings.Contains(string(b), vol) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("state file %s never got volume %s", state, vol)
}

// TestRunServesUntilCancelled starts Run on a real port and stops it with the context.
func TestRunServesUntilCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Addr: addr, StateFile: state, Speed: 60}) }()
	var clock ClockInfo
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/_sim/clock")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&clock)
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("cloudsim never listened: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if clock.Speed != 60 || clock.Now.IsZero() {
		t.Fatalf("clock: %+v", clock)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file after shutdown: %v", err)
	}
}

// TestClockAndEvents checks the control API: the clock runs at the speed factor, advance moves
// it, and the event log pages by sequence.
func TestClockAndEvents(t *testing.T) {
	f := newFixture(t, Config{Speed: 3600}) // an hour a second
	var c1, c2 ClockInfo
	f.getJSON(t, "/_sim/clock", &c1)
	time.Sleep(100 * time.Millisecond)
	f.getJSON(t, "/_sim/clock", &c2)
	if d := c2.Now.Sub(c1.Now); d < 5*time.Minute || c2.Speed != 3600 {
		t.Fatalf("100 ms at speed 3600 moved the clock %s, want ≥ 6 min", d)
	}
	status, body := f.post(t, "/_sim/clock/advance", "application/json", `{"by":"24h"}`, nil)
	var c3 ClockInfo
	json.Unmarshal([]byte(body), &c3)
	if status != 200 || c3.Now.Sub(c2.Now) < 24*time.Hour {
		t.Fatalf("advance 24h: %d %s", status, body)
	}
	for _, bad := range []string{`{"by":"-1h"}`, `{"by":"soon"}`, `{"by":"1h","extra":1}`, `not json`} {
		if status, body := f.post(t, "/_sim/clock/advance", "application/json", bad, nil); status != 400 || !strings.Contains(body, `"code":"invalid"`) {
			t.Fatalf("advance %s: %d %s, want 400 invalid", bad, status, body)
		}
	}
	f.createVolume(t, "us-east-1a", 1, nil)
	f.createVolume(t, "us-east-1a", 2, nil)
	var all, after struct{ Events []Event }
	f.getJSON(t, "/_sim/events", &all)
	var created []Event // the clock runs fast here: "available" events may interleave
	for _, e := range all.Events {
		if e.Type == "volume.created" {
			created = append(created, e)
		}
	}
	if len(created) != 2 || created[0].Seq >= created[1].Seq {
		t.Fatalf("events: %+v", all.Events)
	}
	f.getJSON(t, "/_sim/events?since="+itoa(created[0].Seq), &after)
	if len(after.Events) == 0 || after.Events[0].Seq != created[0].Seq+1 || after.Events[len(after.Events)-1].Seq < created[1].Seq {
		t.Fatalf("events since %d: %+v", created[0].Seq, after.Events)
	}
	if code := f.getJSON(t, "/_sim/events?since=yesterday", nil); code != 400 {
		t.Fatalf("bad since: %d", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestFaultAPIValidation proves a bad fault is a 4xx with the JSON error shape and changes
// nothing.
func TestFaultAPIValidation(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	tests := []struct {
		body   string
		status int
		code   string
	}{
		{`{"type":"meteor-strike"}`, 400, "invalid"},
		{`{"type":"hardware-failure"}`, 400, "invalid"},
		{`{"type":"hardware-failure","instance_id":"i-0000000000000dead"}`, 404, "not_found"},
		{`{"type":"zone-outage","zone":"mars-1a"}`, 400, "invalid"},
		{`{"type":"throttle"}`, 400, "invalid"},
		{`{"type":"stuck-snapshot","snapshot_id":"snap-1","volume_id":"vol-1"}`, 400, "invalid"},
		{`{"type":"hardware-failure","instance_id":"` + id + `","id":"mine"}`, 400, "invalid"},
		{`{"type":"hardware-failure","instance_id":"` + id + `","colour":"red"}`, 400, "invalid"},
		{`[]`, 400, "invalid"},
	}
	for _, tc := range tests {
		status, body := f.post(t, "/_sim/faults", "application/json", tc.body, nil)
		if status != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) {
			t.Errorf("POST %s: %d %s, want %d %s", tc.body, status, body, tc.status, tc.code)
		}
	}
	active, _ := f.sim.Faults()
	if len(active) != 0 {
		t.Fatalf("rejected faults left state behind: %+v", active)
	}
	req, _ := http.NewRequest(http.MethodDelete, f.url+"/_sim/faults/fault-999", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("DELETE unknown fault: %v %v", err, resp.Status)
	}
	resp.Body.Close()
}

// TestScenario proves scenario files fire their faults at their simulated times, in YAML and
// JSON, and that a scenario with one bad item schedules nothing.
func TestScenario(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime + statusInitTime)
	f.ec2.CreateTags(f.ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: toTags(map[string]string{"Name": "file1"})})
	// The instance is named by tag, as a scenario written before the fleet existed would.
	yamlScenario := "- at: 10m\n  fault:\n    type: hardware-failure\n    instance_id: tag:Name=file1\n- at: 2h\n  fault: {type: zone-outage, zone: us-east-1b}\n"
	status, body := f.post(t, "/_sim/scenario", "application/yaml", yamlScenario, nil)
	if status != 201 {
		t.Fatalf("POST scenario: %d %s", status, body)
	}
	impaired := func() bool {
		st, _ := f.ec2.DescribeInstanceStatus(f.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}})
		return st.InstanceStatuses[0].SystemStatus.Status == ec2types.SummaryStatusImpaired
	}
	f.sim.Advance(9 * time.Minute)
	if impaired() {
		t.Fatal("fault fired before its time")
	}
	f.sim.Advance(time.Minute)
	if !impaired() {
		t.Fatal("fault scheduled at 10m did not fire at 10m")
	}
	st, _ := f.ec2.DescribeInstanceStatus(f.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}})
	if since := *st.InstanceStatuses[0].SystemStatus.Details[0].ImpairedSince; !since.Equal(f.sim.Now()) {
		t.Fatalf("impaired since %s, want the scheduled moment %s", since, f.sim.Now())
	}
	_, scheduled := f.sim.Faults()
	if len(scheduled) != 1 || scheduled[0].Type != FaultZoneOutage {
		t.Fatalf("still scheduled: %+v", scheduled)
	}

	bad := `[{"at":"1m","fault":{"type":"zone-outage","zone":"us-east-1a"}},{"at":"2m","fault":{"type":"nope"}}]`
	if status, body := f.post(t, "/_sim/scenario", "application/json", bad, nil); status != 400 || !strings.Contains(body, "item 2") {
		t.Fatalf("bad scenario: %d %s", status, body)
	}
	if _, scheduled := f.sim.Faults(); len(scheduled) != 1 {
		t.Fatalf("a rejected scenario scheduled %d faults", len(scheduled)-1)
	}
}

// TestScenarioFileAtStart loads --scenario from a file when the Sim starts.
func TestScenarioFileAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outage.json")
	os.WriteFile(path, []byte(`[{"at":"30m","fault":{"type":"zone-outage","zone":"us-east-1a"}}]`), 0o644)
	f := newFixture(t, Config{Speed: frozen, Scenario: path})
	f.sim.Advance(30 * time.Minute)
	zones, _ := f.ec2.DescribeAvailabilityZones(f.ctx, &ec2.DescribeAvailabilityZonesInput{Filters: []ec2types.Filter{{Name: aws.String("state"), Values: []string{"impaired"}}}})
	if len(zones.AvailabilityZones) != 1 || *zones.AvailabilityZones[0].ZoneName != "us-east-1a" {
		t.Fatalf("impaired zones after 30m: %+v", zones.AvailabilityZones)
	}
	if _, err := New(Config{Scenario: filepath.Join(t.TempDir(), "missing.yaml")}); err == nil {
		t.Fatal("a missing scenario file must fail New")
	}
}

// TestHostView shows a simulated host through the control API, and 404 for no such host.
func TestHostView(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", map[string]string{"anyops:role": "file"})
	var h struct {
		Hostname string            `json:"hostname"`
		Role     string            `json:"role"`
		Packages map[string]string `json:"packages"`
	}
	if code := f.getJSON(t, "/_sim/hosts/"+id, &h); code != 200 || h.Role != "file" || h.Packages["openssl"] == "" || !strings.HasPrefix(h.Hostname, "ip-10-0-") {
		t.Fatalf("GET /_sim/hosts/%s: %d %+v", id, code, h)
	}
	var e struct{ Error struct{ Code string } }
	if code := f.getJSON(t, "/_sim/hosts/i-0000000000000dead", &e); code != 404 || e.Error.Code != "not_found" {
		t.Fatalf("unknown host: %d %+v", code, e)
	}
}

// TestStateOfAnOlderFormatIsRefused: a state file whose fleet an older cloudsim built (hosts
// configured by tags, no files, no device names) is refused with a message saying what to do,
// rather than carried on half-understood; an empty one is taken up.
func TestStateOfAnOlderFormatIsRefused(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.json")
	if err := os.WriteFile(old, []byte(`{"clock":"2014-07-15T09:00:00Z","instances":{"i-1":{"id":"i-1","state":"running"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{StateFile: old}); err == nil || !strings.Contains(err.Error(), "delete the file for a fresh fleet") {
		t.Fatalf("New on an older state file: %v, want a refusal saying what to do", err)
	}
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte(`{"clock":"2014-07-15T09:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{StateFile: empty})
	if err != nil {
		t.Fatalf("an empty older state: %v", err)
	}
	s.Close()
}
