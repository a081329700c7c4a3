package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// failoverSpeed runs the recoveries fast enough for a test and slow enough that the control
// plane's own latency (a few tens of real milliseconds per step, each worth as many simulated
// seconds as the speed) stays small against the simulated minutes they take: a new server's
// 20-minute build is 24 real seconds.
const failoverSpeed = 50

// failoverStack is `anyops worker` as a child process on the real Temporal dev server, with
// cloudsim behind crash points and a SQLite inventory.
type failoverStack struct {
	t        *testing.T
	endpoint string
	tc       client.Client
	sim      *cloudsim.Sim
	crash    *crashPoints
	bin      string
	env      []string
	logFile  string
	clouds   *activities.Clients
	store    *inventory.Store
	worker   *workerProcess
}

func newFailoverStack(t *testing.T) *failoverStack {
	t.Helper()
	s := &failoverStack{t: t, tc: testenv.TemporalClient(t), bin: buildAnyops(t)}
	var err error
	if s.sim, err = cloudsim.New(cloudsim.Config{Speed: failoverSpeed}); err != nil {
		t.Fatal(err)
	}
	s.crash = newCrashPoints(s.sim.Handler())
	srv := httptest.NewServer(s.crash)
	s.endpoint = srv.URL
	t.Cleanup(func() {
		s.crash.releaseAll()
		srv.Close()
		_ = s.sim.Close()
	})
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "anyops.db")
	s.logFile = filepath.Join(dir, "worker.log")
	s.env = []string{
		"ANYOPS_TEMPORAL_ADDR=" + testenv.Temporal(t), "ANYOPS_TEMPORAL_NAMESPACE=default",
		"ANYOPS_DATA_DIR=" + dir, "ANYOPS_DB_DRIVER=sqlite", "ANYOPS_DB_DSN=" + dbFile,
		"ANYOPS_AWS_REGION=us-east-1", "ANYOPS_AWS_ENDPOINT=" + srv.URL,
		"ANYOPS_AWS_ACCESS_KEY_ID=test", "ANYOPS_AWS_SECRET_ACCESS_KEY=test",
		fmt.Sprintf("ANYOPS_COMMAND_POLL=%s", 2*time.Second/failoverSpeed),
	}
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := os.ReadFile(s.logFile); err == nil {
				t.Logf("worker log:\n%s", lastBytes(out, 8000))
			}
		}
	})
	if s.clouds, err = activities.NewClients(context.Background(), config.AWS{Region: "us-east-1", Endpoint: srv.URL}); err != nil {
		t.Fatal(err)
	}
	pauseSchedules(t, s.tc)
	s.worker = startWorker(t, s.bin, s.env, s.logFile)
	if s.store, err = inventory.Open(context.Background(), inventory.DriverSQLite, dbFile); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.store.Close() })
	return s
}

// restart kills the worker with SIGKILL and starts a fresh one.
func (s *failoverStack) restart() {
	s.worker.kill9(s.t)
	s.worker = startWorker(s.t, s.bin, s.env, s.logFile)
}

// timing is the production recovery timing at the stack's speed, with heartbeats short
// enough that a killed worker's activities move to the next one within seconds.
func (s *failoverStack) timing() workflows.RecoveryTiming {
	return workflows.RecoveryTiming{FleetTiming: workflows.FleetTiming{HeartbeatTimeout: 2 * time.Second, CallTimeout: 10 * time.Second}}.Scaled(failoverSpeed)
}

// buildCluster builds a cluster of the live shape (with its warm spare when asked).
func (s *failoverStack) buildCluster(cluster string, spare bool) workflows.BuildClusterResult {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.BuildClusterWorkflowID(cluster), TaskQueue: workflows.TaskQueueControl},
		workflows.BuildClusterWorkflowType, workflows.BuildClusterInput{Scope: "it-" + uuid.NewString(), Cluster: cluster,
			Plan: activities.ClusterPlan(cluster, inventory.DemoZone, ""), Spare: spare, Timing: workflows.RecoveryTiming{FleetTiming: crashTiming}})
	if err != nil {
		s.t.Fatal(err)
	}
	var res workflows.BuildClusterResult
	if err := run.Get(ctx, &res); err != nil {
		s.t.Fatalf("BuildCluster %s: %v", cluster, err)
	}
	return res
}

// startFailover starts the failover of a file server as the alarm intake does.
func (s *failoverStack) startFailover(server string) client.WorkflowRun {
	s.t.Helper()
	run, err := s.tc.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: anyops.FailoverWorkflowID(server), TaskQueue: workflows.TaskQueueControl},
		workflows.FailoverWorkflowType, workflows.FailoverInput{RecoveryRequest: workflows.RecoveryRequest{Server: server, RequestedBy: "integration-test"}, Timing: s.timing()})
	if err != nil {
		s.t.Fatal(err)
	}
	return run
}

func (s *failoverStack) result(run client.WorkflowRun) workflows.FailoverResult {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var res workflows.FailoverResult
	if err := run.Get(ctx, &res); err != nil {
		s.t.Fatalf("failover %s: %v", run.GetID(), err)
	}
	return res
}

// lagBackups makes the backups of the clusters lag, as on 15 July 2014 after the storage
// change: their links down for two simulated hours while the file servers write, then up
// again, so that they are resyncing.
func (s *failoverStack) lagBackups(backups ...string) {
	s.t.Helper()
	var faults []string
	for _, b := range backups {
		f, err := s.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultDRBDDisconnect, InstanceID: b})
		if err != nil {
			s.t.Fatal(err)
		}
		faults = append(faults, f.ID)
	}
	s.sim.Advance(2 * time.Hour)
	for _, id := range faults {
		s.sim.ClearFault(id)
	}
}

// july2014 sets the outage up on a cluster: the backup lagging and resyncing, then the file
// server's hardware failing with a corrupt boot disk. It returns when the fault fired, in
// simulated time.
func (s *failoverStack) july2014(fleet workflows.BuildClusterResult, cluster string) time.Time {
	s.t.Helper()
	s.lagBackups(fleet.Instances[inventory.BackupServerOf(cluster)])
	return s.hardwareFailure(fleet.Instances[inventory.FileServerOf(cluster)], true)
}

// hardwareFailure fails an instance's hardware (and its boot disk, when corrupt) now.
func (s *failoverStack) hardwareFailure(instance string, corrupt bool) time.Time {
	s.t.Helper()
	at := s.sim.Now()
	if _, err := s.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultHardwareFailure, InstanceID: instance}); err != nil {
		s.t.Fatal(err)
	}
	if corrupt {
		if _, err := s.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultCorruptBootDisk, InstanceID: instance}); err != nil {
			s.t.Fatal(err)
		}
	}
	return at
}

// recoveryTime is, from cloudsim's events, the simulated time from the fault until every
// client of the cluster is served again by the winner: the last client's first
// nfs.client.serving from it after the fault.
func (s *failoverStack) recoveryTime(fault time.Time, clients []string, winner string) (time.Duration, bool) {
	var last time.Time
	for _, c := range clients {
		var first time.Time
		for _, ev := range s.sim.QueryEvents(cloudsim.EventQuery{After: fault, Types: []string{"nfs.client.serving"}}) {
			if ev.Data["client"] == c && ev.Data["server"] == winner {
				first = ev.Time
				break
			}
		}
		if first.IsZero() {
			return 0, false
		}
		if first.After(last) {
			last = first
		}
	}
	return last.Sub(fault), true
}

// clientsOf are the instance ids of a cluster's web, console and task servers.
func clientsOf(fleet workflows.BuildClusterResult) []string {
	var out []string
	for name, id := range fleet.Instances {
		for _, role := range []string{"-web", "-console", "-task"} {
			if strings.Contains(name, role) {
				out = append(out, id)
			}
		}
	}
	return out
}

// checkOneFileServer proves the cluster ends with one file server serving (oneFileServer).
func (s *failoverStack) checkOneFileServer(_ workflows.BuildClusterResult, cluster, serving string) {
	s.t.Helper()
	for _, problem := range oneFileServer(s.t, s.clouds, s.endpoint, cluster, serving) {
		s.t.Error(problem)
	}
}

// oneFileServer names what keeps the cluster from having one file server serving: exactly one
// host (serving, when not "") holds every resource Primary, with md0 running and /srv/home
// exported; no other host is Primary of any (never two Primaries); every data volume is
// attached to one instance.
func oneFileServer(t *testing.T, clouds *activities.Clients, endpoint, cluster, serving string) []string {
	t.Helper()
	ctx := context.Background()
	out, err := clouds.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	primaries := map[string][]string{}
	servingHosts := 0
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if i.State == nil || i.State.Name != "running" || tagValue(i.Tags, anyops.TagCluster) != cluster {
				continue
			}
			h := simHostOf(t, endpoint, aws.ToString(i.InstanceId))
			for res, d := range h.DRBD {
				if d.Role == "Primary" {
					primaries[res] = append(primaries[res], aws.ToString(i.InstanceId))
				}
			}
			if _, ok := h.Exports["10.0.0.0/16:/srv/home"]; ok && h.MD["/dev/md0"].Active {
				servingHosts++
				if serving != "" && aws.ToString(i.InstanceId) != serving {
					problems = append(problems, fmt.Sprintf("%s serves /srv/home besides the winner %s", aws.ToString(i.InstanceId), serving))
				}
			}
		}
	}
	if servingHosts != 1 {
		problems = append(problems, fmt.Sprintf("%d hosts serve /srv/home, want exactly one", servingHosts))
	}
	for res, hosts := range primaries {
		if strings.HasPrefix(res, cluster+"-") && len(hosts) != 1 {
			problems = append(problems, fmt.Sprintf("DRBD %s is Primary on %v: never two Primaries", res, hosts))
		}
	}
	vols, err := clouds.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		if len(v.Attachments) > 1 {
			problems = append(problems, fmt.Sprintf("volume %s is attached %d times", aws.ToString(v.VolumeId), len(v.Attachments)))
		}
	}
	return problems
}

// replacementsOf counts the instances built to replace a server (named <server>-xxxx).
func replacementsOf(t *testing.T, c *ec2.Client, server string) []string {
	t.Helper()
	var out []string
	for name, ids := range describeInstances(t, c) {
		if strings.HasPrefix(name, server+"-") && len(name) == len(server)+5 {
			out = append(out, ids...)
		}
	}
	return out
}

// TestFailoverOnCloudsimThreeOutages runs three failovers at once on the real worker, each on
// a cluster of the live shape: drill-a loses its file server's hardware with an UpToDate backup
// (promote wins); drill-b and drill-c both live the 15 July 2014 outage (the backup
// mid-resync, the boot disk corrupt) in a zone with one warm spare (built with drill-b, the
// zone's): exactly one of them claims the spare and serves from it (the warm-spare case), the
// other builds a new server and takes the volumes over (the July 2014 case). Each ends with
// one file server serving and every client reading and writing; the simulated recovery time
// of each (fault to every client served again, without the alarm's detection) is logged from
// cloudsim's events.
func TestFailoverOnCloudsimThreeOutages(t *testing.T) {
	s := newFailoverStack(t)
	a, b, c := s.buildCluster("drill-a", false), s.buildCluster("drill-b", true), s.buildCluster("drill-c", false)

	s.lagBackups(b.Instances["drill-b-backup"], c.Instances["drill-c-backup"])
	faultB := s.hardwareFailure(b.Instances["drill-b-file"], true)
	faultC := s.hardwareFailure(c.Instances["drill-c-file"], true)
	faultA := s.hardwareFailure(a.Instances["drill-a-file"], false)
	runA, runB, runC := s.startFailover("drill-a-file"), s.startFailover("drill-b-file"), s.startFailover("drill-c-file")
	resA, resB, resC := s.result(runA), s.result(runB), s.result(runC)
	for _, run := range []client.WorkflowRun{runA, runB, runC} {
		s.logTimeline(run.GetID())
	}

	if resA.Winner != anyops.WayPromote || resA.Serving != "drill-a-backup" {
		t.Errorf("hot backup: %s won serving %s, want promote serving drill-a-backup", resA.Winner, resA.Serving)
	}
	type outage struct {
		name    string
		fleet   workflows.BuildClusterResult
		cluster string
		res     workflows.FailoverResult
		fault   time.Time
		target  string
	}
	outages := []outage{{"hot backup", a, "drill-a", resA, faultA, "120 s"}}
	july := []outage{{"", b, "drill-b", resB, faultB, ""}, {"", c, "drill-c", resC, faultC, ""}}
	spared := 0
	for _, o := range july {
		switch {
		case o.res.Winner == anyops.WayReplace && o.res.Serving == b.Spare:
			spared++
			o.name, o.target = "warm spare ("+o.cluster+")", "300 s"
		case o.res.Winner == anyops.WayReplace && strings.HasPrefix(o.res.Serving, o.cluster+"-file-"):
			o.name, o.target = "July 2014 ("+o.cluster+")", "1320 s"
		default:
			t.Errorf("%s: %s won serving %s, want replace on the zone's spare or a new server", o.cluster, o.res.Winner, o.res.Serving)
			continue
		}
		outages = append(outages, o)
	}
	if spared != 1 {
		t.Errorf("%d failovers served from the zone's one spare %s, want exactly one", spared, b.Spare)
	}
	for _, o := range outages {
		winner, err := s.store.GetServer(context.Background(), o.res.Serving)
		if err != nil {
			t.Fatalf("%s: the winner %s: %v", o.name, o.res.Serving, err)
		}
		s.checkOneFileServer(o.fleet, o.cluster, winner.InstanceID)
		if rto, ok := s.recoveryTime(o.fault, clientsOf(o.fleet), winner.InstanceID); ok {
			t.Logf("%s: simulated recovery %s (target %s, detection not included); new hot backup %s", o.name, rto, o.target, o.res.Backup)
		} else {
			t.Errorf("%s: not every client was served again by %s", o.name, o.res.Serving)
		}
	}
}

// TestFailoverJuly2014SurvivesKilledWorkers replays the 15 July 2014 outage with the worker
// killed by SIGKILL three times: during the race (the replacement building, the repair
// stopping the failed server), during the volume move (a force-detach carried out, its answer
// lost) and during the client switch (a remount carried out, its answer lost). Each time a
// fresh worker takes over. It still ends with one file server serving, no volume attached
// twice, one replacement built, never two Primaries, and every client served again.
func TestFailoverJuly2014SurvivesKilledWorkers(t *testing.T) {
	s := newFailoverStack(t)
	fleet := s.buildCluster("drill-k", false)
	fault := s.july2014(fleet, "drill-k")
	detached := s.crash.arm("DetachVolume")
	run := s.startFailover("drill-k-file")
	id := anyops.FailoverWorkflowID("drill-k-file")

	st := waitForStatus(t, s.tc, id, "the race under way", func(st workflows.Status) bool {
		return stepState(st, "race") == workflows.StepRunning && branchRunning(st, anyops.WayReplace) && branchRunning(st, anyops.WayRepair)
	})
	s.restart()
	t.Logf("kill -9 during the race: %s", st.Message)

	waitHit(t, detached, "DetachVolume")
	st = waitForStatus(t, s.tc, id, "the volume move under way", func(st workflows.Status) bool {
		return stepState(st, "take-over") == workflows.StepRunning
	})
	remounted := s.crash.armScript("mount -t nfs4")
	s.restart()
	t.Logf("kill -9 during the volume move: %s", st.Message)

	waitHit(t, remounted, "mount -t nfs4")
	st = waitForStatus(t, s.tc, id, "the client switch under way", func(st workflows.Status) bool {
		return stepState(st, "switch-clients") == workflows.StepRunning
	})
	s.restart()
	t.Logf("kill -9 during the client switch: %s", st.Message)

	res := s.result(run)
	if res.Winner != anyops.WayReplace || !strings.HasPrefix(res.Serving, "drill-k-file-") {
		t.Fatalf("%s won serving %s, want replace on a new server", res.Winner, res.Serving)
	}
	if built := replacementsOf(t, s.clouds.EC2, "drill-k-file"); len(built) != 1 {
		t.Errorf("replacements built %v, want exactly one", built)
	}
	winner, err := s.store.GetServer(context.Background(), res.Serving)
	if err != nil || winner.Role != anyops.RoleFile {
		t.Fatalf("the winner in the inventory: %+v, %v", winner, err)
	}
	s.checkOneFileServer(fleet, "drill-k", winner.InstanceID)
	if len(res.Clients) != len(clientsOf(fleet)) {
		t.Errorf("clients %v, want every one switched", res.Clients)
	}
	// The kills landed where they were meant to: after cloudsim carried the call out.
	for _, action := range []string{"DetachVolume", sendCommand} {
		if token, n := s.crash.heldCalls(action); n < 1 {
			t.Errorf("the %s whose answer was lost (%q) never reached cloudsim", action, token)
		}
	}
	if rto, ok := s.recoveryTime(fault, clientsOf(fleet), winner.InstanceID); ok {
		t.Logf("July 2014 with three worker kills: simulated recovery %s (target 1320 s)", rto)
	} else {
		t.Errorf("not every client was served again by %s", res.Serving)
	}
}

func branchRunning(st workflows.Status, way anyops.RecoveryWay) bool {
	for _, b := range st.Branches {
		if b.Name == string(way) {
			return b.State == workflows.StepRunning
		}
	}
	return false
}

// simHost is the part of cloudsim's GET /_sim/hosts/{id} the checks read.
type simHost struct {
	DRBD map[string]struct {
		Role, Disk string
		Connected  bool
	}
	MD map[string]struct {
		Devices []string
		Active  bool
	}
	Mounts  map[string]struct{ Device string }
	Exports map[string]string
}

func simHostOf(t *testing.T, endpoint, instance string) simHost {
	t.Helper()
	resp, err := http.Get(endpoint + "/_sim/hosts/" + instance)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h simHost
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("host %s: %v", instance, err)
	}
	return h
}

// logTimeline logs a finished workflow's timeline, each entry at its simulated offset from the
// first (the workflow's clock is real time: times the speed).
func (s *failoverStack) logTimeline(id string) {
	s.t.Helper()
	v, err := s.tc.QueryWorkflow(context.Background(), id, "", workflows.StatusQuery)
	if err != nil {
		s.t.Logf("status of %s: %v", id, err)
		return
	}
	var st workflows.Status
	if err := v.Get(&st); err != nil || len(st.Timeline) == 0 {
		return
	}
	start := st.Timeline[0].At
	for _, e := range st.Timeline {
		s.t.Logf("%s +%6.0fs sim  %s", id, e.At.Sub(start).Seconds()*failoverSpeed, e.Message)
	}
}
