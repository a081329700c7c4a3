package alarms_test

import (
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/alarms"
)

// alertmanagerExample is a version 4 webhook as Alertmanager sends it (the shape of its
// documentation's webhook_config payload), with one alert per way of naming a server and one
// that names none.
const alertmanagerExample = `{
  "receiver": "anyops",
  "status": "firing",
  "alerts": [
    {"status": "firing", "labels": {"alertname": "NFSServerDown", "server": "live-file", "severity": "critical"},
     "annotations": {"summary": "NFS on live-file does not answer", "description": "nfsd probe failed for 2m"},
     "startsAt": "2014-07-15T09:01:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
     "generatorURL": "http://prometheus:9090/graph", "fingerprint": "1a30ba71cca2921f"},
    {"status": "resolved", "labels": {"alertname": "NodeDown", "instance_id": "i-0abc"},
     "annotations": {}, "startsAt": "2014-07-15T09:00:00Z", "endsAt": "2014-07-15T09:05:00Z", "fingerprint": "c6eadffa33fcdf37"},
    {"status": "firing", "labels": {"alertname": "NodeDown", "instance": "live-web1:9100"},
     "annotations": {}, "startsAt": "2014-07-15T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z"},
    {"status": "firing", "labels": {"alertname": "NodeDown", "instance": "i-0def:9100"},
     "annotations": {}, "startsAt": "2014-07-15T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "0000000000000004"},
    {"status": "firing", "labels": {"alertname": "Watchdog"}, "annotations": {},
     "startsAt": "2014-07-15T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "0000000000000005"}
  ],
  "groupLabels": {"alertname": "NodeDown"},
  "commonLabels": {},
  "commonAnnotations": {},
  "externalURL": "http://alertmanager:9093",
  "version": "4",
  "groupKey": "{}:{alertname=\"NodeDown\"}",
  "truncatedAlerts": 0
}`

// TestAlertmanagerLabelContract proves each alert is mapped by the label contract: server,
// then instance_id, then instance's host (a server name or an instance id); a resolved alert
// is a resolved alarm at its end; an alert naming no server is ignored with the reason; and
// the delivery id is the same for a repeat notification of the same alert.
func TestAlertmanagerLabelContract(t *testing.T) {
	w, err := alarms.ParseAlertmanagerWebhook([]byte(alertmanagerExample))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		server, instance string
		state            anyops.AlarmState
		ok               bool
	}
	wants := []want{
		{server: "live-file", state: anyops.AlarmFiring, ok: true},
		{instance: "i-0abc", state: anyops.AlarmResolved, ok: true},
		{server: "live-web1", state: anyops.AlarmFiring, ok: true},
		{instance: "i-0def", state: anyops.AlarmFiring, ok: true},
		{state: anyops.AlarmFiring},
	}
	for i, a := range w.Alerts {
		got, ok, reason := alarms.AlarmFromAlert(a)
		w := wants[i]
		if ok != w.ok || got.Server != w.server || got.InstanceID != w.instance || got.State != w.state || got.Source != anyops.AlarmAlertmanager {
			t.Errorf("alert %d: %+v ok %v (%s), want %+v", i, got, ok, reason, w)
		}
		if !ok && !strings.Contains(reason, "names no server") {
			t.Errorf("alert %d ignored with reason %q", i, reason)
		}
	}
	first, _, _ := alarms.AlarmFromAlert(w.Alerts[0])
	if first.Name != "NFSServerDown" || first.Check != "NFS on live-file does not answer" || !first.At.Equal(time.Date(2014, 7, 15, 9, 1, 0, 0, time.UTC)) {
		t.Errorf("first alert read as %+v", first)
	}
	resolved, _, _ := alarms.AlarmFromAlert(w.Alerts[1])
	if !resolved.At.Equal(time.Date(2014, 7, 15, 9, 5, 0, 0, time.UTC)) {
		t.Errorf("resolved alert at %v, want its end", resolved.At)
	}
	again, _, _ := alarms.AlarmFromAlert(w.Alerts[0])
	if again.DeliveryID != first.DeliveryID || first.DeliveryID == resolved.DeliveryID {
		t.Errorf("delivery ids %q, %q, %q", first.DeliveryID, again.DeliveryID, resolved.DeliveryID)
	}
	noPrint, _, _ := alarms.AlarmFromAlert(w.Alerts[2])
	if noPrint.DeliveryID == "" || strings.HasPrefix(noPrint.DeliveryID, "@") {
		t.Errorf("an alert without fingerprint got delivery id %q", noPrint.DeliveryID)
	}
}

// TestParseAlertmanagerWebhookRejects proves webhooks of another version or with bad statuses
// are EINVALID.
func TestParseAlertmanagerWebhookRejects(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"version":"3","status":"firing","alerts":[]}`, "version"},
		{`{"version":"4","status":"burning","alerts":[]}`, "status"},
		{`{"version":"4","status":"firing","alerts":[{"status":"on","labels":{"a":"b"}}]}`, "alerts[0].status"},
		{`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{}}]}`, "no labels"},
		{`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":1}}]}`, "field"},
		{`[`, "JSON"},
	} {
		_, err := alarms.ParseAlertmanagerWebhook([]byte(tc.body))
		if anyops.ErrorCode(err) != anyops.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want invalid mentioning %q", tc.body, err, tc.want)
		}
	}
}

// TestAlarmFromSNSCloudWatch proves the CloudWatch payloads map to alarms: a status check
// ALARM and OK on an instance are firing and resolved, AWS's sample (NetworkOut) and a status
// check without an instance are ignored with the reason.
func TestAlarmFromSNSCloudWatch(t *testing.T) {
	msg := func(message string) *alarms.SNSMessage {
		return &alarms.SNSMessage{Type: alarms.SNSNotification, MessageID: "m-1", Message: message}
	}
	for _, tc := range []struct {
		name, message string
		ok            bool
		state         anyops.AlarmState
		reason        string
	}{
		{"system check ALARM", statusCheck("StatusCheckFailed_System", "ALARM", "i-0abc"), true, anyops.AlarmFiring, ""},
		{"instance check ALARM", statusCheck("StatusCheckFailed_Instance", "ALARM", "i-0abc"), true, anyops.AlarmFiring, ""},
		{"combined check OK", statusCheck("StatusCheckFailed", "OK", "i-0abc"), true, anyops.AlarmResolved, ""},
		{"no data", statusCheck("StatusCheckFailed", "INSUFFICIENT_DATA", "i-0abc"), false, "", "no data"},
		{"AWS sample: NetworkOut", string(readFixture(t, "cloudwatch-alarm-network-out.json")), false, anyops.AlarmFiring, "not an EC2 status check"},
		{"no instance", statusCheck("StatusCheckFailed_System", "ALARM", ""), false, anyops.AlarmFiring, "no InstanceId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok, reason, err := alarms.AlarmFromSNS(msg(tc.message))
			if err != nil || ok != tc.ok || a.State != tc.state || !strings.Contains(reason, tc.reason) {
				t.Fatalf("AlarmFromSNS = %+v, %v, %q, %v", a, ok, reason, err)
			}
			if ok && (a.InstanceID != "i-0abc" || a.DeliveryID != "m-1" || a.Source != anyops.AlarmSNS || a.At.Year() != 2014) {
				t.Fatalf("alarm %+v", a)
			}
		})
	}
	for _, bad := range []string{"Hello world!", `{"AlarmName":"x"}`, `{"AlarmName":"x","NewStateValue":"MAYBE"}`} {
		if _, _, _, err := alarms.AlarmFromSNS(msg(bad)); anyops.ErrorCode(err) != anyops.EINVALID {
			t.Errorf("AlarmFromSNS(%q) = %v, want invalid", bad, err)
		}
	}
}

func statusCheck(metric, state, instance string) string {
	dims := `[]`
	if instance != "" {
		dims = `[{"value":"` + instance + `","name":"InstanceId"}]`
	}
	return `{"AlarmName":"live-file-` + metric + `","NewStateValue":"` + state + `","OldStateValue":"OK",` +
		`"NewStateReason":"Threshold Crossed","StateChangeTime":"2014-07-15T09:02:00.000+0000","Region":"US East (N. Virginia)",` +
		`"Trigger":{"MetricName":"` + metric + `","Namespace":"AWS/EC2","Statistic":"MAXIMUM","Dimensions":` + dims +
		`,"Period":60,"EvaluationPeriods":2,"ComparisonOperator":"GreaterThanOrEqualToThreshold","Threshold":1.0}}`
}
