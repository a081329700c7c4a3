package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/anyops/anyops/alarms"
	"github.com/anyops/anyops/alarms/snstest"
	"github.com/anyops/anyops/inventory"
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
}

func newAlarmFixture(t *testing.T, driver string) *alarmFixture {
	t.Helper()
	sns := snstest.NewServer(t)
	queue := "alarms-test-" + uuid.NewString()
	f := &alarmFixture{fixture: newFixture(t, driver, func(d *Deps) {
		d.Alarms = AlarmDeps{SNSTopics: []string{snstest.Topic}, SNSCertHosts: []string{sns.Host}, SNSClient: sns.Client(),
			AlertmanagerToken: alertmanagerToken, TaskQueue: queue}
	}), sns: sns, queue: queue}
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
		if rule, ok := alarms.RuleFor(s.Role); ok {
			_ = f.tc.TerminateWorkflow(context.Background(), rule.Kind+"/"+s.Name, "", "test ended")
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
