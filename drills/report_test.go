package drills

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/inventory"
)

// t0 is the origin of the synthetic logs: cloudsim's epoch plus an hour.
var t0 = time.Date(2014, 7, 15, 10, 0, 0, 0, time.UTC)

// log builds a synthetic event log in time order.
type log struct {
	seq    int64
	events []cloudsim.Event
}

func (l *log) at(offset time.Duration, typ, resource, message string, data map[string]any) *log {
	l.seq++
	l.events = append(l.events, cloudsim.Event{Seq: l.seq, Time: t0.Add(offset), Type: typ, Resource: resource, Message: message, Data: data})
	return l
}

func (l *log) drbd(offset time.Duration, typ, inst, res, rest string) *log {
	return l.at(offset, "drbd."+typ, inst, "drbd "+res+" "+rest, nil)
}

func (l *log) nfs(offset time.Duration, typ, client string) *log {
	return l.at(offset, "nfs.client."+typ, client, "/home on "+client, map[string]any{"client": client, "mount": "/home", "server": "i-f"})
}

// cluster is the synthetic drill-1: a file server, its backup, two web servers, a console host
// and a task server, one DRBD resource.
func cluster() []Resource {
	inst := func(id, name string, role anyops.Role) Resource {
		return Resource{ID: id, Type: "instance", State: "running", Tags: map[string]string{"Name": name, anyops.TagCluster: "drill-1", anyops.TagRole: string(role)}}
	}
	vol := func(id, name string) Resource {
		return Resource{ID: id, Type: "volume", State: "in-use", Tags: map[string]string{"Name": name, anyops.TagCluster: "drill-1", anyops.TagDRBDResource: "drill-1-r0"}}
	}
	return []Resource{
		inst("i-f", "drill-1-file", anyops.RoleFile), inst("i-b", "drill-1-backup", anyops.RoleBackup),
		inst("i-w1", "drill-1-web1", anyops.RoleWeb), inst("i-w2", "drill-1-web2", anyops.RoleWeb),
		inst("i-c1", "drill-1-console1", anyops.RoleConsole), inst("i-t1", "drill-1-task1", anyops.RoleTask),
		vol("vol-f0", "drill-1-file/home0"), vol("vol-b0", "drill-1-backup/home0"),
		{ID: "i-live", Type: "instance", State: "running", Tags: map[string]string{"Name": "live-web1", anyops.TagCluster: "live", anyops.TagRole: "web"}},
	}
}

var clients = []string{"i-w1", "i-w2", "i-c1", "i-t1"}

// built is the log of the cluster as BuildCluster leaves it: the pair in sync, the file server
// Primary, every client serving.
func built() *log {
	l := &log{}
	for _, i := range []string{"i-f", "i-b"} {
		l.drbd(-20*time.Minute, "create-md", i, "drill-1-r0", "meta data created")
		l.drbd(-20*time.Minute, "up", i, "drill-1-r0", "up on "+i)
	}
	l.drbd(-19*time.Minute, "connected", "i-f", "drill-1-r0", "connected").drbd(-19*time.Minute, "connected", "i-b", "drill-1-r0", "connected")
	l.drbd(-19*time.Minute, "new-current-uuid", "i-f", "drill-1-r0", "UpToDate without an initial sync")
	l.drbd(-19*time.Minute, "primary", "i-f", "drill-1-r0", "is Primary on ip-f (force=false)")
	for _, c := range clients {
		l.nfs(-15*time.Minute, "serving", c)
	}
	return l
}

func input(l *log, end time.Duration) ReportInput {
	return ReportInput{Drill: "drill/1", Scenario: "test", Cluster: "drill-1", Armed: t0.Add(-time.Minute), Origin: t0, End: t0.Add(end),
		Events: l.events, Resources: cluster(), ClusterStates: map[string]anyops.ClusterState{"drill-1": anyops.ClusterLive, "live": anyops.ClusterLive},
		Clock: Clock{Anchor: ClockAnchor{Real: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Sim: t0, Speed: 10}}}
}

func ptr(f float64) *float64 { return &f }

// TestComputeOnLogs computes reports from event logs of the outcomes a drill meets and checks
// the figures each must give.
func TestComputeOnLogs(t *testing.T) {
	hotBackup := func() *log {
		l := built()
		l.at(0, "fault.hardware-failure", "i-f", "fault-1 injected", nil)
		l.drbd(0, "disconnected", "i-b", "drill-1-r0", "lost its peer")
		for _, c := range clients {
			l.nfs(0, "stale", c)
		}
		l.drbd(40*time.Second, "primary", "i-b", "drill-1-r0", "is Primary on ip-b (force=false)")
		for i, c := range clients {
			l.nfs(60*time.Second+time.Duration(i)*3*time.Second, "unmounted", c)
			l.nfs(60*time.Second+time.Duration(i)*3*time.Second+time.Second, "serving", c)
		}
		l.at(100*time.Second, "instance.stopping", "i-f", "", nil).at(160*time.Second, "instance.stopped", "i-f", "", nil)
		l.at(400*time.Second, "instance.running", "i-f", "", nil)
		l.drbd(400*time.Second, "up", "i-f", "drill-1-r0", "up on ip-f as Secondary (disk x)")
		l.drbd(401*time.Second, "connected", "i-f", "drill-1-r0", "connected").drbd(401*time.Second, "connected", "i-b", "drill-1-r0", "connected")
		l.drbd(401*time.Second, "resync-started", "i-f", "drill-1-r0", "resyncing 0.2 GiB")
		l.drbd(500*time.Second, "synced", "i-f", "drill-1-r0", "is UpToDate")
		return l
	}
	for _, tc := range []struct {
		name  string
		in    ReportInput
		check func(t *testing.T, r Report)
	}{{
		name: "hot backup promoted: rto to the last client serving again, no hot backup until the old primary resynced",
		in:   input(hotBackup(), 10*time.Minute),
		check: func(t *testing.T, r Report) {
			if !r.Recovered || r.RTOSeconds == nil || *r.RTOSeconds != 70 {
				t.Errorf("rto %v recovered %v, want 70 (the fourth client's remount)", r.RTOSeconds, r.Recovered)
			}
			if r.NoHotBackupSeconds != 500 || !r.HotBackupAtEnd {
				t.Errorf("no hot backup %v s (at end %v), want 500 and hot at the end", r.NoHotBackupSeconds, r.HotBackupAtEnd)
			}
			if r.InterlockViolations != 0 || r.LostBytes != 0 || r.DuplicateResources != 0 {
				t.Errorf("violations %v lost %d duplicates %v", r.Violations, r.LostBytes, r.Duplicates)
			}
		},
	}, {
		name: "no recovery within the timeout: rto null, the backup cold to the end",
		in: func() ReportInput {
			l := built()
			l.at(0, "fault.hardware-failure", "i-f", "", nil).drbd(0, "disconnected", "i-b", "drill-1-r0", "lost its peer")
			for _, c := range clients {
				l.nfs(0, "stale", c)
			}
			in := input(l, 30*time.Minute)
			in.TimedOut = true
			return in
		}(),
		check: func(t *testing.T, r Report) {
			if r.Recovered || r.RTOSeconds != nil || !r.TimedOut {
				t.Errorf("rto %v recovered %v timed out %v, want null, false, true", r.RTOSeconds, r.Recovered, r.TimedOut)
			}
			if r.NoHotBackupSeconds != 30*60 || r.HotBackupAtEnd {
				t.Errorf("no hot backup %v, want 1800", r.NoHotBackupSeconds)
			}
		},
	}, {
		name: "two faults, two replacements: rto when the second new client serves; the old ones do not count",
		in: func() ReportInput {
			l := built()
			l.at(0, "fault.hardware-failure", "i-w1", "", nil).at(0, "fault.hardware-failure", "i-c1", "", nil)
			l.nfs(0, "stale", "i-w1").nfs(0, "stale", "i-c1")
			l.at(60*time.Second, "instance.launched", "i-w3", "", nil).at(62*time.Second, "instance.launched", "i-c3", "", nil)
			l.nfs(1200*time.Second, "serving", "i-w3")
			l.nfs(1250*time.Second, "serving", "i-c3")
			l.nfs(1300*time.Second, "unmounted", "i-w1").at(1330*time.Second, "instance.terminated", "i-w1", "", nil)
			in := input(l, 40*time.Minute)
			in.Resources = append(in.Resources,
				Resource{ID: "i-w3", Type: "instance", State: "running", Tags: map[string]string{"Name": "drill-1-web3", anyops.TagCluster: "drill-1", anyops.TagRole: "web"}},
				Resource{ID: "i-c3", Type: "instance", State: "running", Tags: map[string]string{"Name": "drill-1-console3", anyops.TagCluster: "drill-1", anyops.TagRole: "console"}})
			return in
		}(),
		check: func(t *testing.T, r Report) {
			if r.RTOSeconds == nil || *r.RTOSeconds != 1250 {
				t.Errorf("rto %v, want 1250", r.RTOSeconds)
			}
			if r.NoHotBackupSeconds != 0 {
				t.Errorf("no hot backup %v: the storage was never touched", r.NoHotBackupSeconds)
			}
		},
	}, {
		name: "a fault that reaches no client: rto 0",
		in: func() ReportInput {
			l := built()
			l.at(0, "fault.hardware-failure", "i-b", "", nil).drbd(0, "disconnected", "i-f", "drill-1-r0", "lost its peer")
			return input(l, 5*time.Minute)
		}(),
		check: func(t *testing.T, r Report) {
			if r.RTOSeconds == nil || *r.RTOSeconds != 0 || r.NoHotBackupSeconds != 300 {
				t.Errorf("rto %v no hot backup %v, want 0 and 300", r.RTOSeconds, r.NoHotBackupSeconds)
			}
		},
	}, {
		name: "broken interlocks: two live Primaries, a forced promotion of an Inconsistent copy, split brain, a double attach, a live cluster terminated",
		in: func() ReportInput {
			l := built()
			l.at(-30*time.Second, "drbd.resync-started", "i-b", "drbd drill-1-r0 on ip-b resyncing 500 GiB", nil)
			l.at(0, "fault.drbd-disconnect", "i-f", "", nil).drbd(0, "disconnected", "i-b", "drill-1-r0", "lost its peer")
			l.drbd(10*time.Second, "primary", "i-b", "drill-1-r0", "is Primary on ip-b (force=true)")
			l.at(11*time.Second, "drbd.split-brain", "i-b", "drbd drill-1-r0: split brain detected", map[string]any{"resource": "drill-1-r0"})
			l.at(20*time.Second, "volume.attached", "vol-f0", "volume vol-f0 attached to i-f as /dev/sdf", nil)
			l.at(21*time.Second, "volume.attaching", "vol-f0", "volume vol-f0 attaching to i-b as /dev/sdf", nil)
			l.at(30*time.Second, "instance.terminated", "i-live", "", nil)
			l.at(40*time.Second, "data.lost", "i-f", "writes lost", map[string]any{"bytes": 4096.0, "instance": "i-f"})
			l.at(41*time.Second, "data.lost", "i-other", "not ours", map[string]any{"bytes": 1e9, "instance": "i-other"})
			return input(l, 5*time.Minute)
		}(),
		check: func(t *testing.T, r Report) {
			var kinds []string
			for _, v := range r.Violations {
				kinds = append(kinds, v.Kind)
			}
			want := []string{anyops.ViolationTwoPrimaries, anyops.ViolationUnsafePromotion, anyops.ViolationSplitBrain,
				anyops.ViolationDoubleAttach, anyops.ViolationLiveClusterTerminated}
			if !reflect.DeepEqual(kinds, want) || r.InterlockViolations != len(want) {
				t.Errorf("violations %v (%d), want %v", kinds, r.InterlockViolations, want)
			}
			if r.LostBytes != 4096 {
				t.Errorf("lost %d bytes, want 4096 (only the cluster's)", r.LostBytes)
			}
		},
	}, {
		name: "a forced promotion with an audited override of not-uptodate is no violation",
		in: func() ReportInput {
			l := built()
			l.at(-30*time.Second, "drbd.resync-started", "i-b", "drbd drill-1-r0 on ip-b resyncing 500 GiB", nil)
			l.at(0, "fault.hardware-failure", "i-f", "", nil)
			l.drbd(10*time.Second, "primary", "i-b", "drill-1-r0", "is Primary on ip-b (force=true)")
			in := input(l, 5*time.Minute)
			in.Overrides = []Override{{Interlock: string(anyops.InterlockNotUpToDate), Subject: "failover/drill-1-file"}}
			return in
		}(),
		check: func(t *testing.T, r Report) {
			if r.InterlockViolations != 0 {
				t.Errorf("violations %v", r.Violations)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compute(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

// TestDuplicates proves one step made twice and two live instances of one name are counted,
// and a terminated namesake (a replaced server) is not.
func TestDuplicates(t *testing.T) {
	res := cluster()
	step := map[string]string{anyops.TagCluster: "drill-1", anyops.TagScope: "run-1", anyops.TagStep: "launch/drill-1-file2", "Name": "drill-1-file2"}
	res = append(res,
		Resource{ID: "i-n1", Type: "instance", State: "running", Tags: step},
		Resource{ID: "i-n2", Type: "instance", State: "running", Tags: step},
		Resource{ID: "i-old", Type: "instance", State: "terminated", Tags: map[string]string{anyops.TagCluster: "drill-1", "Name": "drill-1-web1"}},
		Resource{ID: "i-w1b", Type: "instance", State: "running", Tags: map[string]string{anyops.TagCluster: "drill-1", "Name": "drill-1-web2"}},
		Resource{ID: "i-n1", Type: "instance", State: "running", Tags: step}, // listed twice: still one resource
	)
	d := duplicates(res, "drill-1")
	if len(d) != 2 || !reflect.DeepEqual(d[0].IDs, []string{"i-n1", "i-n2"}) || !reflect.DeepEqual(d[1].IDs, []string{"i-w1b", "i-w2"}) {
		t.Errorf("duplicates %+v", d)
	}
}

// TestControlPlane proves the control plane's time is the gaps between busy intervals inside
// the window, at the speed in force in each.
func TestControlPlane(t *testing.T) {
	r0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return r0.Add(time.Duration(n) * time.Millisecond) }
	clock := Clock{Anchor: ClockAnchor{Real: r0, Sim: t0, Speed: 10},
		Changes: []SpeedChange{{Sim: t0.Add(5 * time.Second), Speed: 100, Previous: 10}}} // at real 500 ms
	runs := []Run{
		{Started: ms(0), Busy: []Interval{{ms(50), ms(200)}, {ms(180), ms(400)}}},
		{Started: ms(100), Busy: []Interval{{ms(450), ms(600)}, {ms(700), ms(900)}}},
	}
	// Gaps: 0–50 ms and 400–450 ms at speed 10 (0.5 s and 0.5 s), 600–700 ms at speed 100 (10 s),
	// and 900 ms to the end (the recovery point, simulated t0+45 s: real 900 ms) nothing.
	until := clock.ToSim(ms(900))
	if got := controlPlane(runs, clock, until); got != 11*time.Second {
		t.Errorf("control plane %s, want 11s", got)
	}
}

// TestClock proves the mapping goes both ways across speed changes before and after its anchor.
func TestClock(t *testing.T) {
	r0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(ClockAnchor{Real: r0, Sim: t0, Speed: 10}, []cloudsim.Event{
		{Time: t0.Add(-100 * time.Second), Type: "clock.speed", Data: map[string]any{"speed": 10.0, "previous": 100.0}},
		{Time: t0.Add(60 * time.Second), Type: "clock.speed", Data: map[string]any{"speed": 60.0, "previous": 10.0}},
	})
	for _, tc := range []struct {
		real time.Duration
		sim  time.Duration
	}{{0, 0}, {time.Second, 10 * time.Second}, {6 * time.Second, 60 * time.Second}, {7 * time.Second, 120 * time.Second},
		{-10 * time.Second, -100 * time.Second}, {-11 * time.Second, -200 * time.Second}} {
		if got := c.ToSim(r0.Add(tc.real)); !got.Equal(t0.Add(tc.sim)) {
			t.Errorf("ToSim(%s) = %s, want %s", tc.real, got.Sub(t0), tc.sim)
		}
		if got := c.ToReal(t0.Add(tc.sim)); !got.Equal(r0.Add(tc.real)) {
			t.Errorf("ToReal(%s) = %s, want %s", tc.sim, got.Sub(r0), tc.real)
		}
	}
	if s := c.MaxSpeed(t0, t0.Add(time.Minute)); s != 60 {
		t.Errorf("max speed %v, want 60", s)
	}
	if s := c.SpeedAt(t0.Add(-150 * time.Second)); s != 100 {
		t.Errorf("speed before the first change %v, want 100", s)
	}
}

// TestRecoveriesAndDetection proves the winner comes from the failover's result, detection
// from the first incident after the origin, and goals are checked against the figures.
func TestRecoveriesAndDetection(t *testing.T) {
	l := built()
	l.at(0, "fault.hardware-failure", "i-f", "", nil)
	in := input(l, 10*time.Minute)
	realAt := func(sim time.Duration) time.Time { return in.Clock.ToReal(t0.Add(sim)) }
	closed := realAt(90 * time.Second)
	in.Incidents = []inventory.Incident{{ID: 7, WorkflowID: "failover/drill-1-file", CreatedAt: realAt(35 * time.Second),
		Timeline: []inventory.IncidentEvent{{Kind: "alarm", Message: "probe", CreatedAt: realAt(35 * time.Second)}}}}
	stamp := closed.Format(time.RFC3339Nano)
	in.Kinds = map[string]string{"FileServerFailover": "failover"}
	in.Recoveries = []Run{{WorkflowID: "failover/drill-1-file", Type: "FileServerFailover", State: "completed",
		Started: realAt(36 * time.Second), Closed: &closed, Result: json.RawMessage(`{"server":"drill-1-file","winner":"promote"}`),
		Status: json.RawMessage(`{"phase":"done","steps":[{"name":"assess","state":"done","started":"` + stamp + `","finished":"` + stamp + `"}]}`)}}
	in.Goals = map[string]float64{"detect_seconds": 30, "lost_bytes": 0, "rto_seconds": 120}
	r, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Winner != "promote" || len(r.Recoveries) != 1 || r.Recoveries[0].Kind != "failover" || r.Recoveries[0].ClosedOffsetSeconds == nil || *r.Recoveries[0].ClosedOffsetSeconds != 90 {
		t.Errorf("winner %q recoveries %+v", r.Winner, r.Recoveries)
	}
	if r.DetectSeconds == nil || *r.DetectSeconds != 35 {
		t.Errorf("detect %v, want 35", r.DetectSeconds)
	}
	if g := r.Goals["detect_seconds"]; g.Met || g.Value == nil || *g.Value != 35 {
		t.Errorf("goal detect_seconds %+v: 35 > 30", g)
	}
	if g := r.Goals["lost_bytes"]; !g.Met {
		t.Errorf("goal lost_bytes %+v", g)
	}
	if g := r.Goals["rto_seconds"]; !g.Met || g.Value == nil || *g.Value != 0 {
		t.Errorf("goal rto_seconds %+v: no client lost its mount in this log, so 0 and met", g)
	}
	sources := map[string]bool{}
	for _, e := range r.Timeline {
		sources[e.Source] = true
	}
	if !sources[anyops.DrillSourceCloud] || !sources[anyops.DrillSourceIncident] || !sources[anyops.DrillSourceWorkflow] {
		t.Errorf("timeline sources %v", sources)
	}
}

// TestReportKeysAreStable pins the keys `anyops drill run --json` prints: a change here is a
// change of the drill's public interface.
func TestReportKeysAreStable(t *testing.T) {
	b, err := json.Marshal(Report{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := slices.Clone(anyops.DrillReportKeys)
	slices.Sort(want)
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("report keys %v, want %v", keys, want)
	}
	pinned := "cluster,control_plane_seconds,detect_seconds,drill,duplicate_resources,duplicates,goals,hot_backup_at_end," +
		"interlock_violations,lost_bytes,no_hot_backup_seconds,origin,recovered,recoveries,rto_seconds,scenario,speed," +
		"timed_out,timeline,violations,winner"
	if got := strings.Join(keys, ","); got != pinned {
		t.Errorf("keys changed:\n got %s\nwant %s", got, pinned)
	}
	// Extra keys travel beside the fixed ones, and back.
	r := Report{Drill: "drill/1", Extra: map[string]any{"downtime_seconds": 12.5}}
	b, _ = json.Marshal(r)
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Extra["downtime_seconds"] != 12.5 || back.Drill != "drill/1" {
		t.Errorf("round trip: %s → %+v (%v)", b, back, err)
	}
	if _, err := json.Marshal(Report{Extra: map[string]any{"rto_seconds": 1}}); err == nil {
		t.Error("an extra key that is a base key was marshalled")
	}
}

// TestExtensionKeys proves no registered report function declares a base key or another's.
func TestExtensionKeys(t *testing.T) {
	owner := map[string]string{}
	for _, name := range ExtensionNames() {
		ext := extensions[name]
		for _, k := range ext.Keys {
			if slices.Contains(anyops.DrillReportKeys, k) {
				t.Errorf("%s declares the base key %s", name, k)
			}
			if o, ok := owner[k]; ok {
				t.Errorf("%s and %s both declare %s", name, o, k)
			}
			owner[k] = name
		}
		for _, k := range ext.Numeric {
			if !slices.Contains(ext.Keys, k) {
				t.Errorf("%s: numeric key %s is not among its keys", name, k)
			}
		}
	}
}

// TestComputeOnRecordedLogs computes the reports of drills recorded from real runs
// (testdata/logs/*.json: the report input as the drill gathered it, and the figures its run
// printed) and checks the figures are computed again the same.
func TestComputeOnRecordedLogs(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "logs", "*.json"))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var rec struct {
				Input ReportInput       `json:"input"`
				Want  map[string]any    `json:"want"`
				Note  string            `json:"note"`
				_     map[string]string `json:"-"`
			}
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatal(err)
			}
			r, err := Compute(rec.Input)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(r)
			var all map[string]any
			_ = json.Unmarshal(got, &all)
			for k, want := range rec.Want {
				if fmt.Sprint(all[k]) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v (%s)", k, all[k], want, rec.Note)
				}
			}
		})
	}
}
