package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/drills"
	"github.com/anyops/anyops/internal/smtptest"
	"github.com/anyops/anyops/inventory"
)

// patchEnv is a fleet for FleetPatch's testsuite tests: servers launched in an in-process
// cloudsim (their hosts vulnerable, as the demo fleet's are), the same servers in a SQLite
// inventory with the demo web apps, a real SMTP server for the notices, and the testsuite
// environment with the real activities registered.
type patchEnv struct {
	sim       *cloudsim.Sim
	endpoint  string
	store     *inventory.Store
	smtp      *smtptest.Server
	env       *testsuite.TestWorkflowEnvironment
	ec2       *ec2.Client
	ssm       *ssm.Client
	instances map[string]string // server -> instance id
}

// patchServers is the demo fleet's servers by name and role.
var demoPatchServers = []struct {
	name string
	role anyops.Role
}{
	{"live-file", anyops.RoleFile}, {"live-backup", anyops.RoleBackup}, {"live-web1", anyops.RoleWeb}, {"live-web2", anyops.RoleWeb},
	{"live-console1", anyops.RoleConsole}, {"live-console2", anyops.RoleConsole}, {"live-task1", anyops.RoleTask},
}

func newPatchEnv(t *testing.T, servers []struct {
	name string
	role anyops.Role
}) *patchEnv {
	t.Helper()
	ctx := context.Background()
	e := &patchEnv{instances: map[string]string{}}
	e.sim, e.endpoint = cloudsim.NewTestServer(t, cloudsim.Config{})
	clients, err := activities.NewClients(ctx, config.AWS{Region: "us-east-1", Endpoint: e.endpoint})
	if err != nil {
		t.Fatal(err)
	}
	e.ec2, e.ssm = clients.EC2, clients.SSM
	if e.store, err = inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.Close() })
	if _, err := e.store.UpsertZone(ctx, inventory.Zone{Name: inventory.DemoZone, Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpsertCluster(ctx, inventory.Cluster{Name: inventory.DemoCluster, Zone: inventory.DemoZone, State: anyops.ClusterLive}); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		out, err := clients.EC2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(DemoImageID), InstanceType: "c5.xlarge",
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), Placement: &ec2types.Placement{AvailabilityZone: aws.String(inventory.DemoZone)},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
				{Key: aws.String("Name"), Value: aws.String(s.name)}, {Key: aws.String(anyops.TagRole), Value: aws.String(string(s.role))}}}}})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.Instances[0].InstanceId)
		e.instances[s.name] = id
		if _, err := e.store.UpsertServer(ctx, inventory.Server{Name: s.name, InstanceID: id, Role: s.role, Zone: inventory.DemoZone,
			Cluster: inventory.DemoCluster, State: anyops.ServerRunning}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range inventory.DemoWebApps() {
		if _, ok := e.instances[a.Server]; ok {
			if _, err := e.store.UpsertWebApp(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.sim.Advance(5 * time.Minute) // booted
	e.smtp = smtptest.Start(t)

	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	e.env = suite.NewTestWorkflowEnvironment()
	e.env.SetTestTimeout(2 * time.Minute)
	e.env.RegisterWorkflow(FleetPatch)
	e.env.RegisterActivity(&activities.Inventory{Store: e.store})
	hosts := &activities.Hosts{Clients: clients, PollInterval: 10 * time.Millisecond}
	e.env.RegisterActivity(hosts)
	e.env.RegisterActivity(&activities.UserChecks{Inventory: &activities.Inventory{Store: e.store}, Hosts: hosts})
	e.env.RegisterActivity(&activities.Certificates{Store: e.store, Domain: "www." + inventory.DemoPlatformDomain})
	e.env.RegisterActivity(&activities.Notices{Store: e.store, SMTP: activities.SMTPConfig{Addr: e.smtp.Addr, From: "security@anyops.example"}})
	return e
}

// patchInput is a Heartbleed rollout with test timing.
func patchInput(change func(*FleetPatchInput)) FleetPatchInput {
	in := FleetPatchInput{Advisory: anyops.Heartbleed(), MaxConcurrency: "2", MaxErrors: "0",
		Timing: PatchTiming{FleetTiming: fastTiming, UserCheckInterval: 20 * time.Millisecond}, RequestedBy: "test"}
	if change != nil {
		change(&in)
	}
	return in
}

func (e *patchEnv) run(t *testing.T, in FleetPatchInput) (FleetPatchResult, error) {
	t.Helper()
	e.env.ExecuteWorkflow(FleetPatch, in)
	if !e.env.IsWorkflowCompleted() {
		t.Fatal("FleetPatch did not complete")
	}
	var res FleetPatchResult
	err := e.env.GetWorkflowError()
	if err == nil {
		if gerr := e.env.GetWorkflowResult(&res); gerr != nil {
			t.Fatal(gerr)
		}
	} else {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.HasDetails() {
			_ = app.Details(&res)
		}
	}
	return res, err
}

// hostTLS reads a host's heartbeat state from cloudsim's control API.
func (e *patchEnv) heartbleed(t *testing.T, server string) (vulnerable bool, services int) {
	t.Helper()
	var h struct {
		TLS []struct {
			Vulnerable bool `json:"vulnerable"`
		} `json:"tls"`
	}
	getJSON(t, e.endpoint+"/_sim/hosts/"+e.instances[server], &h)
	for _, s := range h.TLS {
		vulnerable = vulnerable || s.Vulnerable
	}
	return vulnerable, len(h.TLS)
}

// commands lists cloudsim's SSM commands on each instance whose script contains text, as
// simulated-time intervals.
func (e *patchEnv) commands(text string) map[string][][2]time.Time {
	sent := map[string]time.Time{}     // command id -> sent
	onHost := map[string]string{}      // command id -> instance
	out := map[string][][2]time.Time{} // instance -> intervals
	for _, ev := range e.sim.Events(0, 10000) {
		var cmd, inst string
		switch {
		case ev.Type == "ssm.command.sent" && strings.Contains(ev.Message, text):
			fmt.Sscanf(ev.Message, "command %s on %s", &cmd, &inst)
			inst = strings.TrimSuffix(inst, ":")
			sent[cmd], onHost[cmd] = ev.Time, inst
		case strings.HasPrefix(ev.Type, "ssm.command.") && ev.Type != "ssm.command.sent":
			fmt.Sscanf(ev.Message, "command %s", &cmd)
			if t0, ok := sent[cmd]; ok {
				out[onHost[cmd]] = append(out[onHost[cmd]], [2]time.Time{t0, ev.Time})
			}
		}
	}
	return out
}

// maxOverlap is the most intervals open at one moment.
func maxOverlap(intervals [][2]time.Time) int {
	best := 0
	for _, a := range intervals {
		n := 0
		for _, b := range intervals {
			if !b[0].After(a[0]) && b[1].After(a[0]) {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

// TestFleetPatchHeartbleedDemoFleet proves the whole response on the demo fleet's servers: the
// active check finds every web and console server vulnerable before; all seven end patched
// and verified fixed by the heartbeat check (cloudsim agrees: no TLS service vulnerable);
// nginx restarted on web and tornado on console, nothing on file, backup and task with the
// reason; never more than one of a role's two servers restarting at once (and the result's
// max_role_down_percent says 50); the users' health checks ran all along and none failed
// (every restart happened drained); no server left drained; each apt-get upgrade ran once per
// host; without a CA the certificate rotation leaves a key and CSR for a manual issue; and the
// two custom-domain owners (bob with two apps, carol) get one email each through the SMTP
// server, alice and dave (platform subdomains) none.
func TestFleetPatchHeartbleedDemoFleet(t *testing.T) {
	e := newPatchEnv(t, demoPatchServers)
	res, err := e.run(t, patchInput(func(in *FleetPatchInput) { in.MaxConcurrency, in.WatchUsers = "100%", true }))
	if err != nil {
		t.Fatalf("FleetPatch: %v", err)
	}
	if res.UserChecks == 0 || res.UserErrors != 0 {
		t.Errorf("users' checks %d with %d errors %v, want some and none failed", res.UserChecks, res.UserErrors, res.UserErrorList)
	}
	if res.State != anyops.RolloutCompleted || res.VulnerableBefore != 4 || res.VulnerableAfter != 0 || res.Outcomes["patched"] != 7 || res.Errors != 0 {
		t.Fatalf("result %+v, want completed, 4 vulnerable before, 0 after, 7 patched", res)
	}
	if res.MaxRoleDownPercent != 50 {
		t.Errorf("max role down %d%%, want 50 (one of two web or console servers at a time)", res.MaxRoleDownPercent)
	}
	for _, rep := range res.Servers {
		want := map[anyops.Role]string{anyops.RoleWeb: "nginx", anyops.RoleConsole: "tornado"}[rep.Role]
		if strings.Join(rep.Restarted, ",") != want {
			t.Errorf("%s restarted %v, want %q", rep.Server, rep.Restarted, want)
		}
		if want == "" && !strings.Contains(rep.Message, patchNothingRestartedShort) {
			t.Errorf("%s: %q does not say why nothing restarted", rep.Server, rep.Message)
		}
		if rep.After == nil || rep.After.Versions["libssl1.0.0"] != "1.0.1f-1ubuntu2.2" || rep.After.Versions["libssl-dev"] != "1.0.1f-1ubuntu2.2" {
			t.Errorf("%s after %+v", rep.Server, rep.After)
		}
		if vulnerable, _ := e.heartbleed(t, rep.Server); vulnerable {
			t.Errorf("cloudsim still finds %s vulnerable", rep.Server)
		}
	}
	restarts := e.commands("systemctl restart")
	for _, role := range []anyops.Role{anyops.RoleWeb, anyops.RoleConsole} {
		var all [][2]time.Time
		for _, s := range demoPatchServers {
			if s.role == role {
				all = append(all, restarts[e.instances[s.name]]...)
			}
		}
		if len(all) != 2 || maxOverlap(all) != 1 {
			t.Errorf("%s restarts %v: want 2, never both at once", role, all)
		}
	}
	for name, id := range e.instances {
		if n := len(e.commands("apt-get install")[id]); n != 1 {
			t.Errorf("%s: %d upgrades, want 1", name, n)
		}
	}
	if d, _ := e.store.Drains(context.Background()); len(d) != 0 {
		t.Errorf("servers left drained: %v", d)
	}
	if res.Certificate == nil || !res.Certificate.CSRPending || res.Certificate.Rotated {
		t.Errorf("certificate %+v, want a CSR pending (no CA configured)", res.Certificate)
	}
	if got := e.smtp.CountTo(); len(got) != 2 || got["bob@mail.example"] != 1 || got["carol@mail.example"] != 1 || res.NoticesSent != 2 {
		t.Errorf("mail received %v, notices sent %d; want one each to bob and carol", got, res.NoticesSent)
	}
	rollout, err := e.store.GetPatchRollout(context.Background(), "CVE-2014-0160")
	if err != nil || rollout.State != anyops.RolloutCompleted || len(rollout.Servers) != 7 || rollout.Servers[0].Before == nil {
		t.Errorf("inventory report %+v, %v", rollout, err)
	}
}

// TestFleetPatchUsersChecksCatchAServerDownInRotation proves the users' health checks can
// fail: a console host whose tornado is down but which nobody drained is a user error in every
// round, while the web servers the rollout restarts (drained) are none; the errors are
// counted, named, and do not stop the rollout.
func TestFleetPatchUsersChecksCatchAServerDownInRotation(t *testing.T) {
	e := newPatchEnv(t, []struct {
		name string
		role anyops.Role
	}{{"live-web1", anyops.RoleWeb}, {"live-web2", anyops.RoleWeb}, {"live-console1", anyops.RoleConsole}, {"live-console2", anyops.RoleConsole}})
	if _, err := e.ssm.SendCommand(context.Background(), &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"),
		InstanceIds: []string{e.instances["live-console2"]}, Parameters: map[string][]string{"commands": {"systemctl stop tornado"}}}); err != nil {
		t.Fatal(err)
	}
	res, err := e.run(t, patchInput(func(in *FleetPatchInput) {
		in.Target.Roles, in.WatchUsers, in.Advisory.KeysExposed = []anyops.Role{anyops.RoleWeb}, true, false
	}))
	if err != nil || res.State != anyops.RolloutCompleted || res.Outcomes["patched"] != 2 {
		t.Fatalf("%+v, %v", res, err)
	}
	if res.UserErrors == 0 || res.UserChecks <= res.UserErrors || len(res.UserErrorList) == 0 {
		t.Fatalf("users' checks %d, errors %d %v: want live-console2's failures counted", res.UserChecks, res.UserErrors, res.UserErrorList)
	}
	for _, msg := range res.UserErrorList {
		if !strings.Contains(msg, "live-console2") {
			t.Errorf("user error %q is not live-console2's: a drained server's restart counted", msg)
		}
	}
}

// TestFleetPatchStopsPastMaxErrors is the must-show: apt-get fails on 2 of 3 web servers, max
// errors 1, one at a time: the first failure is within the limit, the second stops the
// rollout; the third server gets no command at all (touched nothing further) and stays
// vulnerable, and the report says each server's outcome and why the rest did not start.
func TestFleetPatchStopsPastMaxErrors(t *testing.T) {
	e := newPatchEnv(t, []struct {
		name string
		role anyops.Role
	}{{"live-web1", anyops.RoleWeb}, {"live-web2", anyops.RoleWeb}, {"live-web3", anyops.RoleWeb}})
	for _, s := range []string{"live-web1", "live-web2"} {
		if _, err := e.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultAptFailure, InstanceID: e.instances[s]}); err != nil {
			t.Fatal(err)
		}
	}
	before := len(e.sim.Events(0, 10000))
	_ = before
	res, err := e.run(t, patchInput(func(in *FleetPatchInput) { in.MaxConcurrency, in.MaxErrors = "1", "1" }))
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrRolloutStopped {
		t.Fatalf("FleetPatch error %v, want %s", err, ErrRolloutStopped)
	}
	if res.State != anyops.RolloutStopped || res.Errors != 2 || !strings.Contains(res.StopReason, "more than max errors 1") {
		t.Fatalf("result %+v", res)
	}
	want := map[string]anyops.PatchOutcome{"live-web1": anyops.PatchFailed, "live-web2": anyops.PatchFailed, "live-web3": anyops.PatchNotStarted}
	rollout, err := e.store.GetPatchRollout(context.Background(), "CVE-2014-0160")
	if err != nil || rollout.State != anyops.RolloutStopped || !strings.Contains(rollout.StopReason, "max errors 1") {
		t.Fatalf("inventory rollout %+v, %v", rollout, err)
	}
	for _, rep := range rollout.Servers {
		if rep.Outcome != want[rep.Server] {
			t.Errorf("%s: %s (%s), want %s", rep.Server, rep.Outcome, rep.Message, want[rep.Server])
		}
	}
	if !strings.Contains(rollout.Servers[0].Message, "apt-get") || !strings.Contains(rollout.Servers[2].Message, "not started: ") {
		t.Errorf("messages %q / %q", rollout.Servers[0].Message, rollout.Servers[2].Message)
	}
	if cmds := e.commands("")[e.instances["live-web3"]]; len(cmds) != 0 {
		t.Errorf("live-web3 got %d commands after the stop, want none", len(cmds))
	}
	if vulnerable, _ := e.heartbleed(t, "live-web3"); !vulnerable {
		t.Error("live-web3 is no longer vulnerable: something touched it")
	}
	if res.VulnerableAfter != 3 {
		t.Errorf("vulnerable after %d, want 3", res.VulnerableAfter)
	}
	if d, _ := e.store.Drains(context.Background()); len(d) != 0 {
		t.Errorf("drained %v: a server failing before its restart is never drained", d)
	}
	if len(e.smtp.Messages()) != 0 {
		t.Error("notices were sent for a rollout that stopped")
	}
}

// TestFleetPatchCanaryWaitsForApproval proves the canary pause: after the canary only the
// canary is patched and approve is the only way on (it is refused before the pause); an
// approval lets the rest go; an abort instead ends it with the rest not started.
func TestFleetPatchCanaryWaitsForApproval(t *testing.T) {
	webs := []struct {
		name string
		role anyops.Role
	}{{"live-web1", anyops.RoleWeb}, {"live-web2", anyops.RoleWeb}, {"live-web3", anyops.RoleWeb}}
	in := patchInput(func(in *FleetPatchInput) {
		in.Canary = PatchCanary{Count: 1, Approve: true}
		in.Advisory.KeysExposed = false
	})
	t.Run("approve", func(t *testing.T) {
		e := newPatchEnv(t, webs)
		refusedEarly := false
		e.env.RegisterDelayedCallback(func() {
			e.env.UpdateWorkflow(UpdateApprove, "early", &testsuite.TestUpdateCallback{
				OnReject: func(error) { refusedEarly = true }, OnAccept: func() {}, OnComplete: func(any, error) {}}, DecisionInput{By: "api:op"})
		}, 0)
		e.env.RegisterDelayedCallback(func() {
			st := queryStatus(t, e.env)
			if stepOf(st, patchStepApproval) != StepRunning {
				t.Errorf("an hour in, approval step is %s", stepOf(st, patchStepApproval))
			}
			if got := patchedSoFar(t, e.store); got != 1 {
				t.Errorf("%d servers patched while waiting for approval, want the canary only", got)
			}
			e.env.UpdateWorkflow(UpdateApprove, "ok", &testsuite.TestUpdateCallback{
				OnReject: func(err error) { t.Errorf("approve refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {}}, DecisionInput{By: "api:op"})
		}, time.Hour)
		res, err := e.run(t, in)
		if err != nil || res.Outcomes["patched"] != 3 {
			t.Fatalf("after approval: %+v, %v", res, err)
		}
		if !refusedEarly {
			t.Error("approve was accepted before the canary finished")
		}
	})
	t.Run("abort", func(t *testing.T) {
		e := newPatchEnv(t, webs)
		e.env.RegisterDelayedCallback(func() {
			e.env.UpdateWorkflow(UpdateAbort, "stop", &testsuite.TestUpdateCallback{
				OnReject: func(err error) { t.Errorf("abort refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {}},
				DecisionInput{By: "api:op", Reason: "canary looks wrong"})
		}, time.Hour)
		res, err := e.run(t, in)
		if err == nil || res.State != anyops.RolloutAborted || res.Outcomes["patched"] != 1 || res.Outcomes["not-started"] != 2 ||
			!strings.Contains(res.StopReason, "canary looks wrong") {
			t.Fatalf("after abort: %+v, %v", res, err)
		}
	})
}

// TestFleetPatchReportsUnreachable proves a server SSM cannot reach (stopped) is reported as
// unreachable and counted as an error, never skipped silently, and still counts as vulnerable
// (nobody showed it fixed); the others are patched.
func TestFleetPatchReportsUnreachable(t *testing.T) {
	e := newPatchEnv(t, []struct {
		name string
		role anyops.Role
	}{{"live-web1", anyops.RoleWeb}, {"live-web2", anyops.RoleWeb}, {"live-web3", anyops.RoleWeb}})
	if _, err := e.ec2.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{e.instances["live-web2"]}}); err != nil {
		t.Fatal(err)
	}
	res, err := e.run(t, patchInput(func(in *FleetPatchInput) {
		in.MaxConcurrency, in.MaxErrors, in.Advisory.KeysExposed = "1", "1", false
	}))
	if err != nil || res.State != anyops.RolloutCompleted || res.Errors != 1 || res.Outcomes["unreachable"] != 1 || res.Outcomes["patched"] != 2 || res.VulnerableAfter != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	if rep := res.Servers[1]; rep.Server != "live-web2" || rep.Outcome != anyops.PatchUnreachable || !strings.Contains(rep.Message, "SSM cannot reach") {
		t.Errorf("live-web2 report %+v", rep)
	}
}

// TestFleetPatchRoleOfOneIsBlocked proves the never-a-whole-role interlock: a role with one
// server whose service must restart is not patched (blocked, with the reason), which is no
// error; servers of other roles are patched.
func TestFleetPatchRoleOfOneIsBlocked(t *testing.T) {
	e := newPatchEnv(t, []struct {
		name string
		role anyops.Role
	}{{"live-console1", anyops.RoleConsole}, {"live-task1", anyops.RoleTask}})
	in := patchInput(func(in *FleetPatchInput) { in.Advisory.KeysExposed = false })
	res, err := e.run(t, in)
	if err != nil || res.Outcomes["blocked"] != 1 || res.Outcomes["patched"] != 1 || res.Errors != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	if rep := res.Servers[0]; rep.Server != "live-console1" || !strings.Contains(rep.Message, "whole role console down") {
		t.Errorf("console report %+v", rep)
	}
	if n := len(e.commands("")[e.instances["live-console1"]]); n != 0 {
		t.Errorf("the blocked server got %d commands", n)
	}
}

// TestPatchInputRejected proves bad advisory input is refused before anything starts: the
// kind's Prepare (what POST /v1/operations/patch runs) answers EINVALID naming the problem.
func TestPatchInputRejected(t *testing.T) {
	kind, _ := LookupKind(KindPatch)
	for _, tc := range []struct{ name, body, want string }{
		{"unknown restart role", `{"advisory":{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"1.0.1g-1"}],"restart":{"database":["postgres"]},"check":{"kind":"heartbleed"}}}`, "unknown role"},
		{"unknown target role", `{"advisory":{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"1.0.1g-1"}],"check":{"kind":"heartbleed"}},"target":{"roles":["db"]}}`, "unknown role"},
		{"not a Debian version", `{"advisory":{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"v1.0.1g"}],"check":{"kind":"heartbleed"}}}`, "fixed_version"},
		{"max errors below 0", `{"advisory":{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"1.0.1g-1"}],"check":{"kind":"heartbleed"}},"max_errors":"-1"}`, "max_errors"},
		{"concurrency 0", `{"advisory":{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"1.0.1g-1"}],"check":{"kind":"heartbleed"}},"max_concurrency":"0"}`, "max_concurrency"},
		{"concurrency over 100%", `{"advisory":{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"1.0.1g-1"}],"check":{"kind":"heartbleed"}},"max_concurrency":"101%"}`, "max_concurrency"},
		{"no advisory", `{}`, "advisory.id"},
		{"requested_by set", `{"requested_by":"me"}`, "requested_by"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kind.Prepare([]byte(tc.body), "api:op")
			if anyops.ErrorCode(err) != anyops.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Prepare = %v, want EINVALID mentioning %q", err, tc.want)
			}
		})
	}
	start, err := kind.Prepare([]byte(`{"advisory":{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"1.0.1f-1ubuntu2.2"}],"check":{"kind":"heartbleed"}}}`), "api:op")
	if err != nil || start.ID != "patch/CVE-2014-0160" {
		t.Fatalf("good input: %+v, %v", start, err)
	}
}

// FuzzPatchInput proves the advisory parser (the kind's Prepare) never panics, and that what it
// accepts is a valid advisory with a business key of its id.
func FuzzPatchInput(f *testing.F) {
	f.Add(`{"advisory":{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"1.0.1f-1ubuntu2.2"}],"restart":{"web":["nginx"]},"check":{"kind":"heartbleed","endpoints":{"web":"localhost:443"}}},"max_concurrency":"50%","max_errors":"1"}`)
	f.Add(`{"advisory":{"id":"x","packages":[{"name":"a","fixed_version":"1:0-0"}],"check":{"kind":"heartbleed"}},"target":{"roles":["web"],"zones":["us-east-1a"]},"canary":{"count":2,"approve":true}}`)
	f.Add(`{"max_errors":"-1%"}`)
	kind, _ := LookupKind(KindPatch)
	f.Fuzz(func(t *testing.T, body string) {
		start, err := kind.Prepare([]byte(body), "api:op")
		if err != nil {
			if anyops.ErrorCode(err) != anyops.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		in := start.Input.(FleetPatchInput)
		if in.Advisory.Validate() != nil || start.ID != anyops.PatchWorkflowID(in.Advisory.ID) {
			t.Fatalf("accepted %q as %+v", body, in)
		}
	})
}

func queryStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) Status {
	t.Helper()
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func stepOf(st Status, name string) StepState {
	for _, s := range st.Steps {
		if s.Name == name {
			return s.State
		}
	}
	return ""
}

func patchedSoFar(t *testing.T, store *inventory.Store) int {
	t.Helper()
	r, err := store.GetPatchRollout(context.Background(), "CVE-2014-0160")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range r.Servers {
		if s.Outcome == anyops.PatchPatched {
			n++
		}
	}
	return n
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestHeartbleedScenarioPatchesTheAdvisory proves the heartbleed drill's operation is a patch
// the kind accepts (the API's check of a drill's steps), of the 2014 advisory as the root
// package has it, with the users' health checks on and the role-down policy its goal claims.
func TestHeartbleedScenarioPatchesTheAdvisory(t *testing.T) {
	src, _ := drills.Shipped("heartbleed")
	sc, err := drills.ParseScenario("heartbleed", src, inventory.DemoCluster, CheckDrillOperation)
	if err != nil {
		t.Fatal(err)
	}
	op := sc.Steps[0].Operation
	if op.Kind != KindPatch {
		t.Fatalf("kind %s", op.Kind)
	}
	var in FleetPatchInput
	if err := json.Unmarshal(op.Input, &in); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in.Advisory, anyops.Heartbleed()) {
		t.Errorf("the scenario's advisory %+v is not anyops.Heartbleed() %+v", in.Advisory, anyops.Heartbleed())
	}
	if !in.WatchUsers || float64(in.MaxRoleDownPercent) != sc.Goals["max_role_down_percent"] {
		t.Errorf("watch_users %v, max_role_down_percent %d against the goal %v", in.WatchUsers, in.MaxRoleDownPercent, sc.Goals["max_role_down_percent"])
	}
}
