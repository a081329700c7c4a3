package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/alarms"
	"github.com/anyops/anyops/alarms/snstest"
	"github.com/anyops/anyops/internal/opstart"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// alertmanagerToken is the Alertmanager bearer token of the test API.
const alertmanagerToken = "alertmanager-secret"

// alarmFixture is an API whose alarm endpoints trust a test SNS (its CA, host and topic) and
// take Alertmanager's token, on real parts: an inventory with the demo fleet and the shared
// Temporal dev server. Recoveries it starts go to a task queue of its own, which no worker
// serves, so they stay running for the test to look at; they are terminated at its end.
type alarmFixture struct {
	*fixture
	sns   *snstest.Server
	queue string
	made  time.Time
}

func newAlarmFixture(t *testing.T, driver string) *alarmFixture {
	t.Helper()
	sns := snstest.NewServer(t)
	queue := "alarms-test-" + uuid.NewString()
	f := &alarmFixture{fixture: newFixture(t, driver, func(d *Deps) {
		d.Alarms = AlarmDeps{SNSTopics: []string{snstest.Topic}, SNSCertHosts: []string{sns.Host}, SNSClient: sns.Client(),
			AlertmanagerToken: alertmanagerToken, TaskQueue: queue}
	}), sns: sns, queue: queue, made: time.Now()}
	t.Cleanup(f.terminateRecoveries)
	return f
}

// terminateRecoveries ends every recovery workflow the demo fleet's alarms may have started,
// so that the next test starts from none.
func (f *alarmFixture) terminateRecoveries() {
	srvs, _, err := f.store.ListServers(context.Background(), inventory.ServerFilter{Page: inventory.Page{Limit: inventory.MaxLimit}})
	if err != nil {
		return
	}
	for _, s := range srvs {
		// Every kind, not only the role's: a test may change a server's role under its recovery.
		for _, name := range alarms.RecoveryKinds() {
			kind, _ := workflows.LookupKind(name)
			if start, err := kind.Prepare([]byte(`{"server":"`+s.Name+`"}`), "test"); err == nil {
				_ = f.tc.TerminateWorkflow(context.Background(), start.ID, "", "test ended")
			}
		}
	}
}

// postSNS POSTs an SNS message body as SNS does: text/plain, with the headers that repeat
// its type and topic.
func (f *alarmFixture) postSNS(body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/alarms/sns", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	var head struct{ Type, TopicArn string }
	if json.Unmarshal(body, &head) == nil {
		req.Header.Set("x-amz-sns-message-type", head.Type)
		req.Header.Set("x-amz-sns-topic-arn", head.TopicArn)
	}
	req.Header.Set("User-Agent", "Amazon Simple Notification Service Agent")
	rec := httptest.NewRecorder()
	f.server.Handler().ServeHTTP(rec, req)
	return rec
}

// incidentCount counts every incident of the inventory.
func (f *alarmFixture) incidentCount() int {
	f.t.Helper()
	incs, _, err := f.store.ListIncidents(context.Background(), inventory.IncidentFilter{Page: inventory.Page{Limit: inventory.MaxLimit}})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(incs)
}

// TestSNSRefusedMessagesRecordNothing proves, on both inventory backends and the real
// Temporal dev server, that an SNS message about the demo file server that is forged (signed
// with another key, or altered after signing), stale, from an unknown topic or with its
// signing certificate on a host not allowed is answered 403, and that none of them opens an
// incident or starts a workflow; a body that is not an SNS message is 400, also recording
// nothing.
func TestSNSRefusedMessagesRecordNothing(t *testing.T) {
	for _, driver := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			f := newAlarmFixture(t, driver)
			file, err := f.store.GetServer(context.Background(), inventory.DemoFileServer)
			if err != nil {
				t.Fatal(err)
			}
			alarm := snstest.CloudWatchAlarm("live-file-system", "StatusCheckFailed_System", file.InstanceID, "ALARM")
			workflowsBefore := f.workflowCount()
			for _, tc := range []struct {
				name   string
				body   func() []byte
				status int
				inBody string
			}{
				{"forged: signed with another key", func() []byte { return f.sns.SignWithOtherKey(f.sns.Notification(alarm)) }, 403, "signature does not verify"},
				{"forged: altered after signing", func() []byte {
					return bytes.Replace(f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("x", "StatusCheckFailed_System", "i-00000000000000000", "ALARM"))),
						[]byte("i-00000000000000000"), []byte(file.InstanceID), 1)
				}, 403, "signature does not verify"},
				{"stale", func() []byte {
					m := f.sns.Notification(alarm)
					m.Timestamp = time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339Nano)
					return f.sns.Sign(m)
				}, 403, "Timestamp"},
				{"unknown topic", func() []byte {
					m := f.sns.Notification(alarm)
					m.TopicArn = "arn:aws:sns:us-east-1:999999999999:not-ours"
					return f.sns.Sign(m)
				}, 403, "topic"},
				{"certificate on a host not allowed", func() []byte {
					m := f.sns.Notification(alarm)
					m.SigningCertURL = "https://sns.attacker.example/cert.pem"
					return f.sns.Sign(m)
				}, 403, "not an allowed SNS host"},
				{"not an SNS message", func() []byte { return []byte(`{"hello":"world"}`) }, 400, "Type"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					rec := f.postSNS(tc.body())
					if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.inBody) {
						t.Fatalf("POST /v1/alarms/sns = %d %s, want %d mentioning %q", rec.Code, rec.Body, tc.status, tc.inBody)
					}
					if n := f.incidentCount(); n != 0 {
						t.Fatalf("%d incidents recorded after a refused message", n)
					}
				})
			}
			if got := f.workflowCount(); got != workflowsBefore {
				t.Fatalf("refused messages changed the workflow count from %d to %d", workflowsBefore, got)
			}
		})
	}
}

// TestSNSSubscriptionConfirmed proves a verified SubscriptionConfirmation is answered at once
// and confirmed by a GET of its SubscribeURL, audited; and that one whose SubscribeURL is on a
// host not allowed is 403 and confirms nothing.
func TestSNSSubscriptionConfirmed(t *testing.T) {
	f := newAlarmFixture(t, inventory.DriverSQLite)
	m := f.sns.SubscriptionConfirmation()
	if rec := f.postSNS(f.sns.Sign(m)); rec.Code != 200 {
		t.Fatalf("POST confirmation = %d %s", rec.Code, rec.Body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ev, err := f.store.LatestAudit(context.Background(), "alarms.sns.subscribed")
		if err == nil {
			if ev.Subject != snstest.Topic || f.sns.Confirmations.Load() != 1 {
				t.Fatalf("audit %+v after %d confirmations", ev, f.sns.Confirmations.Load())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscription was not confirmed within 30s (%d GETs)", f.sns.Confirmations.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	bad := f.sns.SubscriptionConfirmation()
	bad.SubscribeURL = "https://sns.attacker.example/?Action=ConfirmSubscription&Token=x"
	if rec := f.postSNS(f.sns.Sign(bad)); rec.Code != 403 {
		t.Fatalf("confirmation with a foreign SubscribeURL = %d %s, want 403", rec.Code, rec.Body)
	}
	if f.sns.Confirmations.Load() != 1 {
		t.Fatalf("%d confirmations, want 1", f.sns.Confirmations.Load())
	}
}

// TestAlertmanagerNeedsItsToken proves the Alertmanager endpoint takes only its own token: no
// token and an API token are 401, and a malformed webhook with the right token is 400.
func TestAlertmanagerNeedsItsToken(t *testing.T) {
	f := newAlarmFixture(t, inventory.DriverSQLite)
	for _, tc := range []struct {
		token  string
		body   string
		status int
	}{
		{"", alertmanagerWebhook("live-file", "firing"), 401},
		{adminToken, alertmanagerWebhook("live-file", "firing"), 401},
		{alertmanagerToken, `{"version":"3","status":"firing","alerts":[]}`, 400},
	} {
		if rec := f.do("POST", "/v1/alarms/alertmanager", tc.token, tc.body); rec.Code != tc.status {
			t.Errorf("token %q: %d %s, want %d", tc.token, rec.Code, rec.Body, tc.status)
		}
	}
	if n := f.incidentCount(); n != 0 {
		t.Fatalf("%d incidents after refused webhooks", n)
	}
	// The API's own routes still refuse Alertmanager's token.
	if rec := f.do("GET", "/v1/incidents", alertmanagerToken, ""); rec.Code != 401 {
		t.Fatalf("GET /v1/incidents with the Alertmanager token = %d, want 401", rec.Code)
	}
}

// alertmanagerWebhook is a version 4 webhook with one alert about server.
func alertmanagerWebhook(server, status string) string {
	return `{"version":"4","groupKey":"{}:{alertname=\"NFSServerDown\"}","status":"` + status + `","receiver":"anyops",
	"alerts":[{"status":"` + status + `","labels":{"alertname":"NFSServerDown","server":"` + server + `","severity":"critical"},
	"annotations":{"summary":"NFS on ` + server + ` does not answer"},"startsAt":"2014-07-15T09:01:00Z","endsAt":"0001-01-01T00:00:00Z",
	"fingerprint":"1a30ba71cca2921f"}]}`
}

// TestTenConcurrentAlarmsOneWorkflow is the one-incident-per-fault proof, on both inventory
// backends and the real Temporal dev server. Ten deliveries of a CloudWatch status-check alarm
// on the demo file server arrive at once — five messages, each delivered twice (SNS is
// at-least-once) — and then an Alertmanager alert about the same server. It proves: exactly one
// delivery started failover/live-file and every other joined that same run; one incident holds
// them all, its timeline naming each source, the five messages once each as alarms and their
// second deliveries as redeliveries; Temporal has exactly one run under the business key, with
// the incident as its search attribute; the Alertmanager alert joined the same run; the OK
// that follows is noted on the incident; and GET /v1/incidents/{id} shows the running workflow.
func TestTenConcurrentAlarmsOneWorkflow(t *testing.T) {
	for _, driver := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			f := newAlarmFixture(t, driver)
			ctx := context.Background()
			file, err := f.store.GetServer(ctx, inventory.DemoFileServer)
			if err != nil {
				t.Fatal(err)
			}
			alarm := snstest.CloudWatchAlarm("live-file-system", "StatusCheckFailed_System", file.InstanceID, "ALARM")
			var bodies [][]byte
			for range 5 {
				body := f.sns.Sign(f.sns.Notification(alarm))
				bodies = append(bodies, body, body)
			}
			answers := make([]AlarmAnswer, len(bodies))
			var wg sync.WaitGroup
			// The signing certificate is fetched once first, so that the ten deliveries meet
			// at the incident rather than queue behind the download.
			f.postSNS(f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("warm-up", "CPUUtilization", file.InstanceID, "ALARM"))))
			gate := make(chan struct{})
			for i, body := range bodies {
				wg.Go(func() {
					<-gate
					rec := f.postSNS(body)
					if rec.Code != http.StatusOK {
						t.Errorf("delivery %d: %d %s", i, rec.Code, rec.Body)
						return
					}
					answers[i] = decode[AlarmAnswer](t, rec)
				})
			}
			close(gate)
			wg.Wait()
			if t.Failed() {
				return
			}
			started, redeliveries := 0, 0
			first := answers[0]
			for i, a := range answers {
				switch a.Action {
				case anyops.AlarmStarted:
					started++
				case anyops.AlarmJoined:
				default:
					t.Errorf("delivery %d: %+v, want started or joined", i, a)
				}
				if a.Redelivery {
					redeliveries++
				}
				if a.WorkflowID != anyops.FailoverWorkflowID(inventory.DemoFileServer) || a.RunID != first.RunID || a.IncidentID != first.IncidentID || a.Kind != workflows.KindFailover {
					t.Errorf("delivery %d: %+v; delivery 0: %+v", i, a, first)
				}
			}
			if started != 1 || redeliveries != 5 {
				t.Fatalf("%d deliveries started the failover and %d were redeliveries, want 1 and 5", started, redeliveries)
			}

			rec := f.do("POST", "/v1/alarms/alertmanager", alertmanagerToken, alertmanagerWebhook(inventory.DemoFileServer, "firing"))
			am := decode[AlertmanagerAnswer](t, rec)
			if rec.Code != 200 || len(am.Alerts) != 1 || am.Alerts[0].Action != anyops.AlarmJoined || am.Alerts[0].RunID != first.RunID || am.Alerts[0].IncidentID != first.IncidentID {
				t.Fatalf("Alertmanager alert for the same server: %d %+v, want it joined run %s", rec.Code, am, first.RunID)
			}
			ok := f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("live-file-system", "StatusCheckFailed_System", file.InstanceID, "OK")))
			if rec := f.postSNS(ok); rec.Code != 200 || decode[AlarmAnswer](t, rec).Action != anyops.AlarmNoted {
				t.Fatalf("OK transition: %d %s, want noted", rec.Code, rec.Body)
			}

			if n := f.incidentCount(); n != 1 {
				t.Fatalf("%d incidents, want 1", n)
			}
			inc, err := f.store.GetIncident(ctx, first.IncidentID)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			sources := map[string]int{}
			for _, ev := range inc.Timeline {
				kinds[ev.Kind]++
				sources[ev.Source]++
			}
			if kinds[inventory.IncidentEventAlarm] != 6 || kinds[inventory.IncidentEventRedelivered] != 5 || kinds[inventory.IncidentEventWorkflow] != 1 ||
				kinds[inventory.IncidentEventAlarmResolved] != 1 || sources["alertmanager"] != 1 {
				t.Fatalf("timeline kinds %v, sources %v; want 6 alarms (5 SNS, 1 Alertmanager), 5 redeliveries, 1 workflow start, 1 resolved", kinds, sources)
			}
			if inc.RunID != first.RunID || inc.WorkflowID != first.WorkflowID || inc.State != inventory.IncidentOpen {
				t.Fatalf("incident %+v", inc)
			}
			if runs := f.runsOf(first.WorkflowID); runs != 1 {
				t.Fatalf("%d runs of %s, want 1", runs, first.WorkflowID)
			}
			desc, err := f.tc.DescribeWorkflowExecution(ctx, first.WorkflowID, first.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()["Incident"].GetData()); !strings.Contains(got, fmt.Sprint(first.IncidentID)) {
				t.Errorf("search attribute Incident = %s, want %d", got, first.IncidentID)
			}
			view := decode[IncidentView](t, f.do("GET", fmt.Sprintf("/v1/incidents/%d", first.IncidentID), viewerToken, ""))
			if view.Workflow == nil || view.Workflow.State != StateRunning || view.Workflow.RunID != first.RunID || len(view.Timeline) != len(inc.Timeline) {
				t.Fatalf("GET /v1/incidents/%d = %+v", first.IncidentID, view)
			}
		})
	}
}

// runsOf counts the runs, open or closed, of a workflow id started since the fixture was made
// (an earlier test's runs do not count), once visibility holds still.
func (f *alarmFixture) runsOf(id string) int64 {
	f.t.Helper()
	return f.settledWorkflowCount(fmt.Sprintf("WorkflowId = '%s' AND StartTime >= '%s'", id, f.made.UTC().Format(time.RFC3339Nano)))
}

// TestAlarmRulesStartTheirRecovery proves the rules through the endpoints: an SNS alarm on the
// backup starts backup-rebuild/<backup>, an Alertmanager alert on a web server (by its
// instance label) replace/<web> and its resolution is noted, an alarm about an instance the
// inventory does not know is 404 (SNS) or ignored (Alertmanager) and records nothing, and an
// OK with no open incident records nothing either.
func TestAlarmRulesStartTheirRecovery(t *testing.T) {
	f := newAlarmFixture(t, inventory.DriverSQLite)
	ctx := context.Background()
	backup, err := f.store.GetServer(ctx, inventory.DemoBackup)
	if err != nil {
		t.Fatal(err)
	}
	rec := f.postSNS(f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("b", "StatusCheckFailed_Instance", backup.InstanceID, "ALARM"))))
	if a := decode[AlarmAnswer](t, rec); rec.Code != 200 || a.Action != anyops.AlarmStarted || a.WorkflowID != anyops.BackupRebuildWorkflowID(inventory.DemoBackup) {
		t.Fatalf("alarm on the backup: %d %+v", rec.Code, a)
	}
	web := strings.Replace(alertmanagerWebhook("x", "firing"), `"server":"x"`, `"instance":"live-web1:9100"`, 1)
	rec = f.do("POST", "/v1/alarms/alertmanager", alertmanagerToken, web)
	if a := decode[AlertmanagerAnswer](t, rec); rec.Code != 200 || a.Alerts[0].Action != anyops.AlarmStarted || a.Alerts[0].WorkflowID != anyops.ServerReplaceWorkflowID("live-web1") {
		t.Fatalf("alert on a web server: %d %+v", rec.Code, a)
	}
	resolved := strings.Replace(alertmanagerWebhook("x", "resolved"), `"server":"x"`, `"instance":"live-web1:9100"`, 1)
	rec = f.do("POST", "/v1/alarms/alertmanager", alertmanagerToken, resolved)
	if a := decode[AlertmanagerAnswer](t, rec); rec.Code != 200 || a.Alerts[0].Action != anyops.AlarmNoted {
		t.Fatalf("the web server's alert resolved: %d %+v, want noted", rec.Code, a)
	}
	before := f.incidentCount()
	rec = f.postSNS(f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("x", "StatusCheckFailed", "i-0000000000000dead", "ALARM"))))
	if rec.Code != 404 {
		t.Fatalf("alarm on an unknown instance: %d %s, want 404", rec.Code, rec.Body)
	}
	rec = f.do("POST", "/v1/alarms/alertmanager", alertmanagerToken, alertmanagerWebhook("nobody", "firing"))
	if a := decode[AlertmanagerAnswer](t, rec); rec.Code != 200 || a.Alerts[0].Action != anyops.AlarmIgnored {
		t.Fatalf("alert on an unknown server: %d %+v", rec.Code, a)
	}
	file, _ := f.store.GetServer(ctx, inventory.DemoFileServer)
	rec = f.postSNS(f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("x", "StatusCheckFailed", file.InstanceID, "OK"))))
	if a := decode[AlarmAnswer](t, rec); rec.Code != 200 || a.Action != anyops.AlarmIgnored {
		t.Fatalf("OK with no open incident: %d %+v", rec.Code, a)
	}
	if got := f.incidentCount(); got != before {
		t.Fatalf("%d incidents after alarms that record nothing, had %d", got, before)
	}
}

// TestAlarmAfterTheRecoveryEnded proves an incident never gets a second recovery: once its
// run has ended (here terminated), a new alarm for the same fault is only noted, and starts
// nothing; once the incident is resolved, the next alarm opens a new incident with a new run.
func TestAlarmAfterTheRecoveryEnded(t *testing.T) {
	f := newAlarmFixture(t, inventory.DriverSQLite)
	ctx := context.Background()
	file, err := f.store.GetServer(ctx, inventory.DemoFileServer)
	if err != nil {
		t.Fatal(err)
	}
	alarm := func() AlarmAnswer {
		t.Helper()
		rec := f.postSNS(f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("live-file-system", "StatusCheckFailed_System", file.InstanceID, "ALARM"))))
		if rec.Code != 200 {
			t.Fatalf("alarm: %d %s", rec.Code, rec.Body)
		}
		return decode[AlarmAnswer](t, rec)
	}
	first := alarm()
	if first.Action != anyops.AlarmStarted {
		t.Fatalf("first alarm: %+v", first)
	}
	if err := f.tc.TerminateWorkflow(ctx, first.WorkflowID, first.RunID, "test: the recovery ended"); err != nil {
		t.Fatal(err)
	}
	again := alarm()
	if again.Action != anyops.AlarmNoted || again.IncidentID != first.IncidentID || !strings.Contains(again.Message, "terminated") {
		t.Fatalf("alarm after the run ended: %+v, want noted on incident %d", again, first.IncidentID)
	}
	if runs := f.runsOf(first.WorkflowID); runs != 1 {
		t.Fatalf("%d runs after the alarm that followed the end, want 1", runs)
	}
	if _, err := f.store.AppendIncidentEvent(ctx, first.IncidentID, inventory.IncidentEventResolved, "recovered", time.Time{}); err != nil {
		t.Fatal(err)
	}
	next := alarm()
	if next.Action != anyops.AlarmStarted || next.IncidentID == first.IncidentID || next.RunID == first.RunID {
		t.Fatalf("alarm after the incident was resolved: %+v, want a new incident and run", next)
	}
}

// cloudWatchAlarm posts a signed CloudWatch alarm on an instance through SNS and returns the
// intake's answer.
func (f *alarmFixture) cloudWatchAlarm(metric, instanceID, state string) AlarmAnswer {
	f.t.Helper()
	return f.postSNSAnswer(f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("alarm-"+metric, metric, instanceID, state))))
}

// postSNSAnswer posts a signed SNS body and returns the intake's answer, failing on anything
// but 200.
func (f *alarmFixture) postSNSAnswer(body []byte) AlarmAnswer {
	f.t.Helper()
	rec := f.postSNS(body)
	if rec.Code != http.StatusOK {
		f.t.Fatalf("POST /v1/alarms/sns: %d %s", rec.Code, rec.Body)
	}
	return decode[AlarmAnswer](f.t, rec)
}

// inventoryServer returns a server of the inventory.
func (f *alarmFixture) inventoryServer(name string) inventory.Server {
	f.t.Helper()
	srv, err := f.store.GetServer(context.Background(), name)
	if err != nil {
		f.t.Fatal(err)
	}
	return srv
}

// recordCutover records in the inventory what a failover's promotion records at its cutover:
// the backup serves (role file) and the failed primary is its backup, being repaired.
func (f *alarmFixture) recordCutover(primary, backup string) {
	f.t.Helper()
	ctx := context.Background()
	for name, role := range map[string]anyops.Role{primary: anyops.RoleBackup, backup: anyops.RoleFile} {
		srv := f.inventoryServer(name)
		srv.Role = role
		if _, err := f.store.UpsertServer(ctx, srv); err != nil {
			f.t.Fatal(err)
		}
	}
}

// TestLateAlarmAfterTheCutoverJoinsTheFailover is the throttled drill's finding, on both
// inventory backends and the real Temporal dev server with the real intake: a failover of the
// demo file server is started by its alarm, and its cutover then records the failed file
// server as the new backup. CloudWatch's late alarm for the same fault (another status check
// of the same instance), an SNS redelivery of the first message, an Alertmanager alert naming
// the server and an OK all arrive after the cutover. It proves each joins (or is noted on) the
// failover's one incident and run, and that no backup-rebuild of the server the failover is
// repairing is started, nor a second incident opened. Then the failover ends and resolves its
// incident: one more SNS redelivery of the first message is still only noted there, while the
// repaired server, a healthy backup now, failing again (a new CloudWatch message) is a new
// fault that starts backup-rebuild/<server> under a new incident.
func TestLateAlarmAfterTheCutoverJoinsTheFailover(t *testing.T) {
	for _, driver := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			f := newAlarmFixture(t, driver)
			ctx := context.Background()
			file := f.inventoryServer(inventory.DemoFileServer)
			failover := anyops.FailoverWorkflowID(inventory.DemoFileServer)
			rebuild := anyops.BackupRebuildWorkflowID(inventory.DemoFileServer)
			firstBody := f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("live-file-system", "StatusCheckFailed_System", file.InstanceID, "ALARM")))
			first := f.postSNSAnswer(firstBody)
			if first.Action != anyops.AlarmStarted || first.WorkflowID != failover {
				t.Fatalf("first alarm: %+v, want %s started", first, failover)
			}
			f.recordCutover(inventory.DemoFileServer, inventory.DemoBackup)

			for _, late := range []struct {
				name   string
				answer func() AlarmAnswer
				want   anyops.AlarmAction
			}{
				{"CloudWatch's late alarm", func() AlarmAnswer {
					return f.cloudWatchAlarm("StatusCheckFailed_Instance", file.InstanceID, "ALARM")
				}, anyops.AlarmJoined},
				{"SNS redelivery of the first alarm", func() AlarmAnswer { return f.postSNSAnswer(firstBody) }, anyops.AlarmJoined},
				{"Alertmanager alert", func() AlarmAnswer {
					rec := f.do("POST", "/v1/alarms/alertmanager", alertmanagerToken, alertmanagerWebhook(inventory.DemoFileServer, "firing"))
					am := decode[AlertmanagerAnswer](t, rec)
					if rec.Code != 200 || len(am.Alerts) != 1 {
						t.Fatalf("Alertmanager: %d %+v", rec.Code, am)
					}
					return AlarmAnswer{am.Alerts[0]}
				}, anyops.AlarmJoined},
				{"CloudWatch OK", func() AlarmAnswer {
					return f.cloudWatchAlarm("StatusCheckFailed_System", file.InstanceID, "OK")
				}, anyops.AlarmNoted},
			} {
				got := late.answer()
				if got.Action != late.want || got.WorkflowID != failover || got.RunID != first.RunID || got.IncidentID != first.IncidentID || got.Kind != workflows.KindFailover {
					t.Errorf("%s after the cutover: %+v, want %s on %s run %s, incident %d", late.name, got, late.want, failover, first.RunID, first.IncidentID)
				}
			}
			if n := f.incidentCount(); n != 1 {
				t.Fatalf("%d incidents after the late alarms, want 1", n)
			}
			if runs := f.runsOf(rebuild); runs != 0 {
				t.Fatalf("%d runs of %s: the late alarm rebuilt the server the failover is repairing", runs, rebuild)
			}
			inc, err := f.store.GetIncident(ctx, first.IncidentID)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			for _, ev := range inc.Timeline {
				kinds[ev.Kind]++
			}
			if kinds[inventory.IncidentEventAlarm] != 3 || kinds[inventory.IncidentEventRedelivered] != 1 || kinds[inventory.IncidentEventAlarmResolved] != 1 {
				t.Fatalf("timeline kinds %v, want 3 alarms, 1 redelivery and 1 alarm-resolved", kinds)
			}

			// The failover ends and resolves its incident (as every recovery does at its end).
			if err := f.tc.TerminateWorkflow(ctx, failover, first.RunID, "test: the failover ended"); err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.AppendIncidentEvent(ctx, first.IncidentID, inventory.IncidentEventResolved, "failover done", time.Time{}); err != nil {
				t.Fatal(err)
			}
			// SNS delivers the first message once more, after the incident was resolved: still
			// that fault's delivery, noted on its incident.
			if late := f.postSNSAnswer(firstBody); late.Action != anyops.AlarmNoted || late.IncidentID != first.IncidentID || !late.Redelivery {
				t.Fatalf("redelivery after the incident was resolved: %+v, want a redelivery noted on incident %d", late, first.IncidentID)
			}
			if runs := f.runsOf(rebuild); runs != 0 {
				t.Fatalf("%d runs of %s after a redelivery of the resolved fault's alarm", runs, rebuild)
			}
			again := f.cloudWatchAlarm("StatusCheckFailed_System", file.InstanceID, "ALARM")
			if again.Action != anyops.AlarmStarted || again.WorkflowID != rebuild || again.IncidentID == first.IncidentID || again.Kind != workflows.KindBackupRebuild {
				t.Fatalf("a new fault of the repaired backup: %+v, want %s started under a new incident", again, rebuild)
			}
			if runs := f.runsOf(failover); runs != 1 {
				t.Fatalf("%d runs of %s, want the one", runs, failover)
			}
		})
	}
}

// TestAlarmJoinsARecoveryRunningOnTheServer proves an alarm on a server that is the subject of
// a recovery of another kind than its role's rule, running with no incident (an operator's
// failover, the server since recorded as a backup), joins that run under a new incident rather
// than starting the role's recovery.
func TestAlarmJoinsARecoveryRunningOnTheServer(t *testing.T) {
	f := newAlarmFixture(t, inventory.DriverSQLite)
	ctx := context.Background()
	file := f.inventoryServer(inventory.DemoFileServer)
	kind, _ := workflows.LookupKind(workflows.KindFailover)
	start, err := kind.Prepare([]byte(`{"server":"`+inventory.DemoFileServer+`"}`), "user:operator")
	if err != nil {
		t.Fatal(err)
	}
	run, err := opstart.Start(ctx, f.tc, kind, start, f.queue)
	if err != nil {
		t.Fatal(err)
	}
	f.recordCutover(inventory.DemoFileServer, inventory.DemoBackup)
	got := f.cloudWatchAlarm("StatusCheckFailed_System", file.InstanceID, "ALARM")
	if got.Action != anyops.AlarmJoined || got.WorkflowID != start.ID || got.RunID != run.RunID {
		t.Fatalf("alarm on the server under the operator's failover: %+v, want joined %s run %s", got, start.ID, run.RunID)
	}
	inc, err := f.store.GetIncident(ctx, got.IncidentID)
	if err != nil || inc.WorkflowID != start.ID || inc.RunID != run.RunID {
		t.Fatalf("incident %+v (%v), want it linked to %s run %s", inc, err, start.ID, run.RunID)
	}
	if runs := f.runsOf(anyops.BackupRebuildWorkflowID(inventory.DemoFileServer)); runs != 0 {
		t.Fatalf("%d backup rebuilds started for the server under the failover", runs)
	}
}

// TestDecisionsReachTheFailover proves the decision routes send their Temporal update to a
// real FileServerFailover started by an alarm, and that its validators decide: approve is
// refused (its policy cuts over by itself), an override of an interlock that holds nothing up
// is refused, an unknown interlock is refused, all as 409 with the workflow's reason; an abort
// with a reason is accepted. A viewer may not decide (403).
func TestDecisionsReachTheFailover(t *testing.T) {
	f := newAlarmFixture(t, inventory.DriverSQLite)
	ctx := context.Background()
	// A worker of the fixture's queue running the failover itself: its validators answer the
	// updates. (Its cloud activities are not there: the failover waits in its assessment.)
	w := sdkworker.New(f.tc, f.queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(workflows.FileServerFailover, workflow.RegisterOptions{Name: workflows.FailoverWorkflowType})
	w.RegisterActivity(&activities.Inventory{Store: f.store})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	file, err := f.store.GetServer(ctx, inventory.DemoFileServer)
	if err != nil {
		t.Fatal(err)
	}
	rec := f.postSNS(f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("live-file-system", "StatusCheckFailed_System", file.InstanceID, "ALARM"))))
	started := decode[AlarmAnswer](t, rec)
	if started.Action != anyops.AlarmStarted {
		t.Fatalf("alarm: %d %s", rec.Code, rec.Body)
	}
	path := operationPath(started.WorkflowID)
	for _, tc := range []struct {
		decision, body, token string
		status                int
		inBody                string
	}{
		{"approve", `{"reason":"looks right"}`, viewerToken, 403, "operator"},
		{"approve", `{"reason":"looks right"}`, operatorToken, 409, "does not wait for approval"},
		{"override", `{"interlock":"not-uptodate","reason":"checked by hand"}`, operatorToken, 409, "holds nothing up now"},
		{"override", `{"interlock":"no-such-lock","reason":"checked by hand"}`, operatorToken, 409, "not one of"},
		{"abort", `{"reason":"wrong server"}`, operatorToken, 200, "cancelled"},
		{"abort", `{"reason":"again"}`, operatorToken, 409, "aborted already"},
	} {
		rec := f.do("POST", path+"/"+tc.decision, tc.token, tc.body)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.inBody) {
			t.Errorf("%s %s: %d %s, want %d mentioning %q", tc.decision, tc.body, rec.Code, rec.Body, tc.status, tc.inBody)
		}
	}
}
