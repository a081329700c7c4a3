package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/coder/websocket"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
)

// devStack is one `bin/anyops dev` process on free ports with its own data dir.
type devStack struct {
	t                                              *testing.T
	cmd                                            *exec.Cmd
	out                                            *syncBuffer
	dataDir                                        string
	api, temporal, ui, cloudsim, sandboxd, sns, tk string
	exited                                         chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var built struct {
	once sync.Once
	dir  string
	err  error
}

// anyopsBinary builds this tree's anyops and its sandbox init into a directory beside a link
// to bin/temporal — the layout `make build` gives — so the test never runs a stale binary.
func anyopsBinary(t *testing.T) string {
	t.Helper()
	temporal := testenv.TemporalBinary(t)
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "anyops-devtest-")
		if built.err != nil {
			return
		}
		root := testenv.RepoRoot()
		for pkg, name := range map[string]string{"./cmd/anyops": "anyops", "./sandboxd/jail/cmd/sandbox-init": "anyops-sandbox-init"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(built.dir, name), pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
		built.err = os.Symlink(temporal, filepath.Join(built.dir, "temporal"))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return filepath.Join(built.dir, "anyops")
}

func TestMain(m *testing.M) {
	testenv.Main(m, func() {
		if built.dir != "" {
			os.RemoveAll(built.dir)
		}
	})
}

func startDev(t *testing.T, dataDir string, extra ...string) *devStack {
	t.Helper()
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }
	d := &devStack{t: t, dataDir: dataDir, api: addr(), temporal: addr(), ui: addr(), cloudsim: addr(), sandboxd: addr(),
		sns: addr(), out: &syncBuffer{}, exited: make(chan struct{})}
	args := []string{"dev", "--data-dir", dataDir, "--api-addr", d.api, "--temporal-addr", d.temporal,
		"--temporal-ui-addr", d.ui, "--cloudsim-addr", d.cloudsim, "--sandboxd-addr", d.sandboxd, "--cloudsim-sns-addr", d.sns}
	if os.Geteuid() == 0 {
		// The console image of the machine's image cache, built there once, not per data dir.
		store, _ := imagestest.Console(t)
		args = append(args, "--sandboxd-image-store", store.Dir())
	}
	args = append(args, extra...)
	d.cmd = exec.Command(anyopsBinary(t), args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		// As Ctrl-C would, so sandboxd ends its sandboxes before t.TempDir is removed.
		_ = d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
		if t.Failed() {
			t.Logf("anyops dev output:\n%s", d.out.String())
		}
	})
	return d
}

// readyzAnswer is one answer of /readyz while the stack starts.
type readyzAnswer struct {
	status  int
	waiting []string
	// running says whether dev had printed "Anyops is running" before this answer was asked.
	running bool
}

// waitReady polls /readyz until it answers 200 and returns every answer it got, in order.
func (d *devStack) waitReady(limit time.Duration) []readyzAnswer {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	var answers []readyzAnswer
	for {
		select {
		case <-d.exited:
			d.t.Fatalf("anyops dev exited during start-up:\n%s", d.out.String())
		default:
		}
		running := strings.Contains(d.out.String(), "Anyops is running")
		if resp, err := http.Get("http://" + d.api + "/readyz"); err == nil {
			var body struct {
				Waiting []string `json:"waiting"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			answers = append(answers, readyzAnswer{resp.StatusCode, body.Waiting, running})
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("not ready after %s:\n%s", limit, d.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(d.dataDir, "admin-token"))
	if err != nil {
		d.t.Fatal(err)
	}
	d.tk = strings.TrimSpace(string(tok))
	return answers
}

// checkReadyMeansReady proves what the answers of /readyz during a first start show: 503
// naming what is still coming (the demo fleet) while "Anyops is running" is not printed yet;
// and once it answers 200, the inventory holds the demo fleet at once. (The console opening
// at once is checkAnonymousConsole, right after.)
func (d *devStack) checkReadyMeansReady(answers []readyzAnswer) {
	d.t.Helper()
	sawFleet := false
	for _, a := range answers[:len(answers)-1] {
		if a.status != http.StatusServiceUnavailable || len(a.waiting) == 0 {
			d.t.Errorf("/readyz before ready: %d waiting %q, want 503 naming what is still coming", a.status, a.waiting)
		}
		if a.running {
			d.t.Errorf("anyops dev printed \"Anyops is running\" while /readyz answered %d %q", a.status, a.waiting)
		}
		sawFleet = sawFleet || (len(a.waiting) > 0 && strings.HasPrefix(a.waiting[0], "demo-fleet: "))
	}
	if !sawFleet {
		d.t.Errorf("/readyz never named the demo fleet as still coming: %+v", answers)
	}
	var page struct {
		Items []server `json:"items"`
	}
	if code := d.call("GET", "/v1/servers?limit=100", d.tk, nil, &page); code != 200 || len(page.Items) != 7 {
		d.t.Errorf("/v1/servers as soon as /readyz answered 200: %d, %d servers, want the demo fleet's 7", code, len(page.Items))
	}
	for _, s := range page.Items {
		if !strings.HasPrefix(s.InstanceID, "i-") {
			d.t.Errorf("server %s has no instance id yet although /readyz answered 200", s.Name)
		}
	}
}

// checkSignInLink proves the dashboard link dev prints carries the admin token in its
// fragment, never a query string, and that the token is on no other line of dev's output
// (its settings and every log line mask or leave it out).
func (d *devStack) checkSignInLink() {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.out.String(), "Anyops is running") {
		if time.Now().After(deadline) {
			d.t.Fatalf("/readyz answered 200 but dev did not print that it is running:\n%s", d.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := "http://" + d.api + "/dashboard#token=" + d.tk
	var carrying []string
	for _, line := range strings.Split(d.out.String(), "\n") {
		if strings.Contains(line, d.tk) {
			carrying = append(carrying, line)
		}
	}
	if len(carrying) != 1 || !strings.Contains(carrying[0], want+" ") || !strings.HasPrefix(strings.TrimSpace(carrying[0]), "Dashboard ") {
		d.t.Errorf("lines of dev's output with the admin token: %q, want only the Dashboard line with %s", carrying, want)
	}
}

// call sends an API request with the admin token (or none when token is "") and decodes JSON.
func (d *devStack) call(method, path, token string, body any, out any) int {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+d.api+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			d.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// stop sends SIGINT, as Ctrl-C does, and waits for the whole stack to end.
func (d *devStack) stop() {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(60 * time.Second):
		d.t.Fatalf("anyops dev did not stop within 60s of SIGINT:\n%s", d.out.String())
	}
	// Nothing it started may survive: not in its process group, not holding its data dir.
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(-d.cmd.Process.Pid, 0); err == nil {
		d.t.Errorf("processes of anyops dev's group %d still running after SIGINT", d.cmd.Process.Pid)
	}
	if out, _ := exec.Command("pgrep", "-af", d.dataDir).Output(); len(bytes.TrimSpace(out)) > 0 {
		d.t.Errorf("processes still using %s after SIGINT:\n%s", d.dataDir, out)
	}
}

type operation struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	State  string `json:"state"`
	Joined bool   `json:"joined"`
	Result json.RawMessage
	Status *struct {
		Phase    string  `json:"phase"`
		Progress float64 `json:"progress"`
	} `json:"status"`
}

// runOperation starts an operation and waits until it completes.
func (d *devStack) runOperation(kind string, limit time.Duration) operation {
	d.t.Helper()
	var op operation
	if code := d.call("POST", "/v1/operations/"+kind, d.tk, map[string]any{}, &op); code != 201 && code != 200 {
		d.t.Fatalf("POST /v1/operations/%s: %d", kind, code)
	}
	deadline := time.Now().Add(limit)
	for {
		var got operation
		d.call("GET", "/v1/operations/"+strings.ReplaceAll(op.ID, "/", "%2F"), d.tk, nil, &got)
		if got.State == "completed" {
			return got
		}
		if got.State == "failed" || got.State == "terminated" || got.State == "canceled" || time.Now().After(deadline) {
			d.t.Fatalf("operation %s: state %q after %s", op.ID, got.State, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestDevStack is `make run` end to end: the real binary starts the whole system on free ports;
// health, readiness, the demo fleet, a FleetAudit through the API that shows in Temporal, auth
// errors, a clear error for a taken port, a hardware fault reaching the inventory and, as a
// CloudWatch alarm cloudsim delivers signed through SNS, an incident the command line shows,
// Ctrl-C leaving nothing behind, and a restart that keeps the state.
func TestDevStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	dataDir := t.TempDir()
	d := startDev(t, dataDir)
	d.checkReadyMeansReady(d.waitReady(3 * time.Minute))
	d.checkSignInLink()
	if os.Geteuid() == 0 {
		d.checkAnonymousConsole() // at once: ready means a console can be opened
	}

	if code := d.call("GET", "/healthz", "", nil, nil); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code := d.call("GET", "/v1/servers", "", nil, nil); code != 401 {
		t.Errorf("/v1/servers without a token: %d, want 401", code)
	}
	// The demo fleet is built in cloudsim and the inventory filled from the cloud.
	servers := d.waitServers(7, 2*time.Minute)
	d.checkInventoryMatchesCloud(servers)
	var zones struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	if d.call("GET", "/v1/zones", d.tk, nil, &zones); len(zones.Items) != 2 || zones.Items[1].Name != "us-east-1c" {
		t.Errorf("/v1/zones = %+v, want us-east-1a and the empty us-east-1c", zones.Items)
	}

	audit := d.runOperation("fleet-audit", time.Minute)
	if !strings.Contains(string(audit.Result), `"servers":7`) {
		t.Errorf("fleet-audit result lacks the server count: %s", audit.Result)
	}
	// The workflow is in Temporal, where the Web UI reads it from.
	if out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "bin", "temporal"), "workflow", "describe",
		"--address", d.temporal, "--workflow-id", audit.ID).CombinedOutput(); err != nil || !strings.Contains(string(out), "COMPLETED") {
		t.Errorf("temporal workflow describe %s: %v\n%s", audit.ID, err, out)
	}
	// Ops filter by search attribute in the UI: the demo fleet's build carries its cluster.
	if out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "bin", "temporal"), "workflow", "list",
		"--address", d.temporal, "--query", "Cluster = 'live'").CombinedOutput(); err != nil || !strings.Contains(string(out), "demo-fleet") {
		t.Errorf("temporal workflow list --query \"Cluster = 'live'\": %v\n%s", err, out)
	}
	if resp, err := http.Get("http://" + d.ui + "/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("Temporal Web UI on %s: %v", d.ui, err)
	} else {
		resp.Body.Close()
	}

	// The API's /metrics carries the worker's Temporal SDK metrics too (one process in dev).
	if resp, err := http.Get("http://" + d.api + "/metrics"); err != nil {
		t.Errorf("/metrics: %v", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `temporal_workflow_completed{`) {
			t.Errorf("/metrics: %d, lacks temporal_workflow_completed", resp.StatusCode)
		}
	}

	// A second stack on the same API port is refused with the flag to change.
	second := exec.Command(anyopsBinary(t), "dev", "--data-dir", t.TempDir(), "--api-addr", d.api)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--api-addr") {
		t.Errorf("second dev on a taken port: err %v, output:\n%s", err, out)
	}

	d.checkHardwareFaultReachesInventory(servers[0].InstanceID, servers[0].Name)
	d.checkAlarmOpensIncident(servers[0].Name)

	d.stop()

	// A restart keeps the state: same token, same fleet, the earlier operation still listed.
	again := startDev(t, dataDir)
	again.waitReady(3 * time.Minute)
	if again.tk != d.tk {
		t.Errorf("admin token changed across a restart")
	}
	// The demo fleet is read back, not rebuilt, even with an instance impaired since.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(again.out.String(), "demo fleet ready"); {
		if strings.Contains(again.out.String(), "level=ERROR") || time.Now().After(deadline) {
			t.Fatalf("after restart the demo fleet did not come back:\n%s", again.out.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	var got operation
	if code := again.call("GET", "/v1/operations/fleet-audit", again.tk, nil, &got); code != 200 || got.State != "completed" {
		t.Errorf("after restart, fleet-audit: %d %q", code, got.State)
	}
	again.stop()
}

type server struct {
	Name       string `json:"name"`
	InstanceID string `json:"instance_id"`
	Role       string `json:"role"`
	State      string `json:"state"`
}

// waitServers polls /v1/servers until it lists n servers with instance ids.
func (d *devStack) waitServers(n int, limit time.Duration) []server {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var page struct {
			Items []server `json:"items"`
		}
		code := d.call("GET", "/v1/servers?limit=100", d.tk, nil, &page)
		withID := 0
		for _, s := range page.Items {
			if strings.HasPrefix(s.InstanceID, "i-") && s.State != "terminated" {
				withID++
			}
		}
		if code == 200 && withID == n {
			return page.Items
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("/v1/servers: %d, %d servers with instance ids after %s, want %d", code, withID, limit, n)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (d *devStack) ec2() *ec2.Client {
	d.t.Helper()
	clients, err := activities.NewClients(context.Background(), config.AWS{Region: "us-east-1", Endpoint: "http://" + d.cloudsim})
	if err != nil {
		d.t.Fatal(err)
	}
	return clients.EC2
}

// checkInventoryMatchesCloud proves the instance ids the API lists are those DescribeInstances
// on cloudsim returns.
func (d *devStack) checkInventoryMatchesCloud(servers []server) {
	d.t.Helper()
	out, err := d.ec2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if err != nil {
		d.t.Fatal(err)
	}
	var cloud []string
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			cloud = append(cloud, *inst.InstanceId)
		}
	}
	var inventory []string
	for _, s := range servers {
		inventory = append(inventory, s.InstanceID)
	}
	sort.Strings(cloud)
	sort.Strings(inventory)
	if strings.Join(cloud, ",") != strings.Join(inventory, ",") {
		d.t.Errorf("instance ids differ:\n cloud     %v\n inventory %v", cloud, inventory)
	}
}

// checkHardwareFaultReachesInventory injects a hardware failure through /_sim/faults, sees it in
// DescribeInstanceStatus, and after a FleetSync in the inventory.
func (d *devStack) checkHardwareFaultReachesInventory(instanceID, name string) {
	d.t.Helper()
	body, _ := json.Marshal(map[string]string{"type": "hardware-failure", "instance_id": instanceID})
	resp, err := http.Post("http://"+d.cloudsim+"/_sim/faults", "application/json", bytes.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		d.t.Fatalf("POST /_sim/faults: %d", resp.StatusCode)
	}
	st, err := d.ec2().DescribeInstanceStatus(context.Background(), &ec2.DescribeInstanceStatusInput{InstanceIds: []string{instanceID}})
	if err != nil || len(st.InstanceStatuses) != 1 || st.InstanceStatuses[0].SystemStatus.Status != "impaired" {
		d.t.Fatalf("DescribeInstanceStatus after the fault: %v %+v", err, st)
	}
	d.runOperation("fleet-sync", 2*time.Minute)
	var got server
	if code := d.call("GET", "/v1/servers/"+name, d.tk, nil, &got); code != 200 || got.State != "impaired" {
		var page struct {
			Items []server `json:"items"`
		}
		d.call("GET", "/v1/servers?limit=100", d.tk, nil, &page)
		for _, s := range page.Items {
			if s.InstanceID == instanceID {
				got = s
			}
		}
		if got.State != "impaired" {
			d.t.Errorf("server %s (%s) after fleet-sync: state %q, want impaired", name, instanceID, got.State)
		}
	}
}

// checkAlarmOpensIncident waits, after the hardware fault of checkHardwareFaultReachesInventory,
// for cloudsim's CloudWatch alarm to reach the API through SNS (signed by cloudsim, verified
// by the API with the CA and host dev configured) and open the server's incident, and reads it
// with the command line in another process, as a developer does beside `make run`: the
// token comes from the data dir.
func (d *devStack) checkAlarmOpensIncident(name string) {
	d.t.Helper()
	cli := func(args ...string) string {
		d.t.Helper()
		out, err := exec.Command(anyopsBinary(d.t), append(args, "--server", "http://"+d.api, "--data-dir", d.dataDir)...).CombinedOutput()
		if err != nil {
			d.t.Fatalf("anyops %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var id string
	for deadline := time.Now().Add(2 * time.Minute); ; {
		for _, line := range strings.Split(cli("incident", "list", "--server-name", name), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 3 && f[2] == name {
				id = f[0]
			}
		}
		if id != "" {
			break
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no incident for %s two minutes after its hardware failed:\n%s", name, d.out.String())
		}
		time.Sleep(time.Second)
	}
	if show := cli("incident", "show", id); !strings.Contains(show, "sns") || !strings.Contains(show, "StatusCheckFailed_System") {
		d.t.Errorf("incident %s does not show cloudsim's CloudWatch alarm:\n%s", id, show)
	}
}

// checkAnonymousConsole opens a python3 console as the public embed does, types into its
// terminal over sandboxd's WebSocket, sees the answer, and closes it. It does not wait for
// capacity: it runs as soon as /readyz says ready.
func (d *devStack) checkAnonymousConsole() {
	d.t.Helper()
	var c struct {
		ID        string `json:"id"`
		AttachURL string `json:"attach_url"`
		Token     string `json:"token"`
	}
	if code := d.call("POST", "/v1/consoles", "", map[string]string{"command": "python3"}, &c); code != 201 || c.AttachURL == "" {
		d.t.Fatalf("POST /v1/consoles: %d %+v", code, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, c.AttachURL, nil)
	if err != nil {
		d.t.Fatalf("attach %s: %v", c.AttachURL, err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageBinary, []byte("print(6*7)\r")); err != nil {
		d.t.Fatal(err)
	}
	var seen strings.Builder
	for !strings.Contains(seen.String(), "42") {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			d.t.Fatalf("console output so far %q: %v", seen.String(), err)
		}
		if typ == websocket.MessageBinary {
			seen.Write(data)
		}
	}
	if code := d.call("DELETE", "/v1/consoles/"+c.ID, c.Token, nil, nil); code/100 != 2 {
		d.t.Errorf("DELETE /v1/consoles/%s: %d", c.ID, code)
	}
}
