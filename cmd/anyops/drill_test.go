package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/drills"
)

// drillBaseSpeed is the speed the drill test's dev stack starts cloudsim at: the speed the
// alarm intake scales the recoveries' timing by (until it reads the cluster's time scale,
// docs/drills.md), so the scenarios' own speeds (5 and 10) are not far from it.
const drillBaseSpeed = 10

// TestDrillsEndToEnd runs drills the way a person does — `anyops dev` in one place (the
// Temporal dev server, cloudsim, SQLite, worker and API) and `anyops drill ...` from the real
// binary in another — with the real alarm path responding: cloudsim's faults, the file server's
// NFS watch, the intake, the failover. It proves: the scenarios are listed; a bad scenario file
// is one line on stderr and a non-zero exit, and starts nothing; hot-backup and july-2014 run at
// once (they take turns with the clock) and each prints one JSON report with every key, having
// recovered with no data lost, no interlock broken and nothing duplicated (the hot backup
// promoted, the July replacement built); each drill cluster is then gone — no instance, no
// volume, and its inventory rows retired — and cloudsim runs at its base speed again.
// Figures are logged, never asserted: a drill's timings are bench/'s business.
func TestDrillsEndToEnd(t *testing.T) {
	d := startDev(t, t.TempDir(), "--no-sandboxd", "--cloudsim-speed", fmt.Sprint(drillBaseSpeed))
	d.waitReady(5 * time.Minute)
	bin := anyopsBinary(t)
	run := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		return runCLI(t, bin, nil, append(args, "--server", "http://"+d.api, "--data-dir", d.dataDir)...)
	}

	out, errOut, code := run("drill", "list")
	if code != 0 {
		t.Fatalf("drill list = %d %s", code, errOut)
	}
	for _, name := range drills.ScenarioNames() {
		if !strings.Contains(out, name+" ") {
			t.Errorf("drill list does not show %s:\n%s", name, out)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("- at: soon\n  fault: {type: hardware-failure, instance_id: \"tag:Name={{cluster}}-file\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run("drill", "run", "--scenario", bad, "--json")
	if code == 0 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "must be a duration") {
		t.Errorf("a bad scenario file: exit %d, stdout %q, stderr %q: want one line naming the problem and a non-zero exit", code, out, errOut)
	}

	type result struct {
		report         anyops.DrillReport
		keys           map[string]json.RawMessage
		stderr         string
		code           int
		stdoutDecodeOK bool
	}
	scenarios := map[string]string{"hot-backup": string(anyops.WayPromote), "july-2014": string(anyops.WayReplace)}
	results := map[string]*result{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for sc := range scenarios {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, code := run("drill", "run", sc, "--json")
			r := &result{stderr: errOut, code: code}
			r.stdoutDecodeOK = json.Unmarshal([]byte(out), &r.report) == nil && json.Unmarshal([]byte(out), &r.keys) == nil
			mu.Lock()
			results[sc] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	var clusters []string
	for sc, winner := range scenarios {
		r := results[sc]
		if !r.stdoutDecodeOK {
			t.Errorf("%s: stdout is not one JSON report (exit %d): %s", sc, r.code, r.stderr)
			continue
		}
		clusters = append(clusters, r.report.Cluster)
		rep := r.report
		t.Logf("%s: rto %v s, detect %v s, no hot backup %.0f s, control plane %.1f s at speed %g, winner %s, lost %d, violations %d, duplicates %d",
			sc, ptrOr(rep.RTOSeconds), ptrOr(rep.DetectSeconds), rep.NoHotBackupSeconds, rep.ControlPlaneSeconds, rep.Speed, rep.Winner,
			rep.LostBytes, rep.InterlockViolations, rep.DuplicateResources)
		if r.code != 0 && !strings.Contains(r.stderr, "missed its goals") {
			t.Errorf("%s: exit %d: %s", sc, r.code, r.stderr)
		}
		for _, k := range anyops.DrillReportKeys {
			if _, ok := r.keys[k]; !ok {
				t.Errorf("%s: the report has no %q", sc, k)
			}
		}
		if !rep.Recovered || rep.TimedOut || rep.LostBytes != 0 || rep.InterlockViolations != 0 || rep.DuplicateResources != 0 || rep.Winner != winner {
			t.Errorf("%s: recovered %v, timed out %v, lost %d, violations %+v, duplicates %+v, winner %q (want %s)",
				sc, rep.Recovered, rep.TimedOut, rep.LostBytes, rep.Violations, rep.Duplicates, rep.Winner, winner)
		}
		if len(rep.Timeline) == 0 || rep.DetectSeconds == nil {
			t.Errorf("%s: no timeline (%d) or no detection (%v)", sc, len(rep.Timeline), rep.DetectSeconds)
		}
	}

	out, _, code = run("drill", "list", "--runs")
	if code != 0 || strings.Count(out, " completed ") != len(scenarios) {
		t.Errorf("drill list --runs = %d:\n%s\nwant both drills completed", code, out)
	}
	out, _, code = run("drill", "show", strings.TrimPrefix(results["hot-backup"].report.Drill, "drill/"))
	if code != 0 || !strings.Contains(out, "rto") || !strings.Contains(out, "winner") {
		t.Errorf("drill show = %d:\n%s", code, out)
	}

	for _, c := range clusters {
		d.checkClusterGone(c)
	}
	resp, err := http.Get("http://" + d.cloudsim + "/_sim/clock")
	if err != nil {
		t.Fatal(err)
	}
	var clock struct{ Speed float64 }
	_ = json.NewDecoder(resp.Body).Decode(&clock)
	resp.Body.Close()
	if clock.Speed != drillBaseSpeed {
		t.Errorf("cloudsim runs at %g after the drills, want its base speed %d back", clock.Speed, drillBaseSpeed)
	}
}

func ptrOr(v *float64) any {
	if v == nil {
		return "none"
	}
	return *v
}

// checkClusterGone proves a torn-down drill cluster left nothing: no instance that is not
// terminated, no volume, and inventory rows only as records (servers terminated, volumes
// deleted, no replica, the cluster retired).
func (d *devStack) checkClusterGone(cluster string) {
	d.t.Helper()
	ctx := context.Background()
	filter := []types.Filter{{Name: aws.String("tag:" + anyops.TagCluster), Values: []string{cluster, cluster + "-standby"}}}
	insts, err := d.ec2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: filter})
	if err != nil {
		d.t.Fatal(err)
	}
	for _, res := range insts.Reservations {
		for _, i := range res.Instances {
			if s := i.State.Name; s != types.InstanceStateNameTerminated && s != types.InstanceStateNameShuttingDown {
				d.t.Errorf("%s: instance %s is %s after the teardown", cluster, aws.ToString(i.InstanceId), s)
			}
		}
	}
	vols, err := d.ec2().DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: filter})
	if err != nil {
		d.t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		d.t.Errorf("%s: volume %s (%s) is left after the teardown", cluster, aws.ToString(v.VolumeId), v.State)
	}
	var servers api.List[struct{ Name, State string }]
	d.call("GET", "/v1/servers?limit=500&cluster="+cluster, d.tk, nil, &servers)
	for _, s := range servers.Items {
		if s.State != string(anyops.ServerTerminated) {
			d.t.Errorf("%s: server %s is %s in the inventory", cluster, s.Name, s.State)
		}
	}
	var volumes api.List[struct {
		VolumeID string `json:"volume_id"`
		State    string
	}]
	d.call("GET", "/v1/volumes?limit=500&cluster="+cluster, d.tk, nil, &volumes)
	for _, v := range volumes.Items {
		if v.State != string(anyops.VolumeDeleted) {
			d.t.Errorf("%s: volume %s is %s in the inventory", cluster, v.VolumeID, v.State)
		}
	}
	var replicas api.List[struct{ Name string }]
	d.call("GET", "/v1/replicas?limit=500&cluster="+cluster, d.tk, nil, &replicas)
	if len(replicas.Items) != 0 {
		d.t.Errorf("%s: replicas left in the inventory: %+v", cluster, replicas.Items)
	}
	var retired api.List[struct{ Name string }]
	code := d.call("GET", "/v1/clusters?limit=500&state="+string(anyops.ClusterRetired), d.tk, nil, &retired)
	found := false
	for _, c := range retired.Items {
		found = found || c.Name == cluster
	}
	if code != 200 || !found {
		d.t.Errorf("%s: not among the retired clusters (GET /v1/clusters?state=retired = %d)", cluster, code)
	}
}
