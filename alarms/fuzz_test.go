package alarms_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/alarms"
)

// FuzzParseSNSMessage proves the SNS message parser never panics, that what it refuses is
// EINVALID, and that what it accepts keeps its fields through a JSON round trip with the same
// string to sign (the string a signature covers cannot drift from what was parsed). The
// corpus is in testdata/fuzz/FuzzParseSNSMessage; seeds are AWS's published examples.
func FuzzParseSNSMessage(f *testing.F) {
	for _, name := range []string{"sns-notification.json", "sns-subscription-confirmation.json", "sns-unsubscribe-confirmation.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(`{"Type":"Notification","Subject":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := alarms.ParseSNSMessage(body)
		if err != nil {
			if anyops.ErrorCode(err) != anyops.EINVALID {
				t.Fatalf("refusal %v is not EINVALID", err)
			}
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := alarms.ParseSNSMessage(again)
		if err != nil {
			t.Fatalf("accepted %q but not its own re-encoding %q: %v", body, again, err)
		}
		if m.StringToSign() != m2.StringToSign() {
			t.Fatalf("string to sign changed through a round trip: %q vs %q", m.StringToSign(), m2.StringToSign())
		}
		if !strings.HasSuffix(m.StringToSign(), "Type\n"+m.Type+"\n") {
			t.Fatalf("string to sign %q does not end with the Type", m.StringToSign())
		}
	})
}

// FuzzAlarmFromSNS proves any Message of an accepted Notification maps to an Alarm of a known
// state, is ignored with a reason, or is EINVALID — never a panic, and never an alarm acted
// on without an instance.
func FuzzAlarmFromSNS(f *testing.F) {
	f.Add(string(readFixture(f, "cloudwatch-alarm-network-out.json")))
	f.Add(`{"AlarmName":"a","NewStateValue":"ALARM","Trigger":{"MetricName":"StatusCheckFailed_System","Namespace":"AWS/EC2","Dimensions":[{"name":"InstanceId","value":"i-1"}]}}`)
	f.Add(`{"AlarmName":"a","NewStateValue":"OK","StateChangeTime":"2014-07-15T09:02:00.000+0000","Trigger":{"MetricName":"StatusCheckFailed","Namespace":"AWS/EC2","Dimensions":[]}}`)
	f.Add(`"ALARM"`)
	f.Fuzz(func(t *testing.T, message string) {
		m := &alarms.SNSMessage{Type: alarms.SNSNotification, MessageID: "m", Message: message}
		a, ok, reason, err := alarms.AlarmFromSNS(m)
		switch {
		case err != nil:
			if anyops.ErrorCode(err) != anyops.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
		case !ok:
			if reason == "" {
				t.Fatal("ignored without a reason")
			}
		default:
			if a.InstanceID == "" || (a.State != anyops.AlarmFiring && a.State != anyops.AlarmResolved) || a.DeliveryID != "m" {
				t.Fatalf("accepted alarm %+v", a)
			}
		}
	})
}

// FuzzParseAlertmanagerWebhook proves the webhook parser never panics, refuses with EINVALID,
// and that every alert of an accepted webhook either names a server or is ignored with a
// reason, with a delivery id.
func FuzzParseAlertmanagerWebhook(f *testing.F) {
	f.Add([]byte(alertmanagerExample))
	f.Add([]byte(`{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"instance":"i-0abc:9100"}}]}`))
	f.Add([]byte(`{"version":"3"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := alarms.ParseAlertmanagerWebhook(body)
		if err != nil {
			if anyops.ErrorCode(err) != anyops.EINVALID {
				t.Fatalf("refusal %v is not EINVALID", err)
			}
			return
		}
		for _, a := range w.Alerts {
			alarm, ok, reason := alarms.AlarmFromAlert(a)
			if alarm.DeliveryID == "" {
				t.Fatalf("alert %+v has no delivery id", a)
			}
			if ok == (reason != "") || (ok && alarm.Server == "" && alarm.InstanceID == "") {
				t.Fatalf("alert %+v: ok %v, reason %q, alarm %+v", a, ok, reason, alarm)
			}
		}
	})
}
