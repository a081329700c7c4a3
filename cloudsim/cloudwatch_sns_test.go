package cloudsim

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// snsReceiver is an HTTP endpoint subscribed to cloudsim's topic: it records every message,
// verifies each signature independently (the certificate fetched over HTTPS from
// SigningCertURL, trusting only the test CA; the string to sign built here from SNS's
// documentation), and confirms subscriptions by a GET of their SubscribeURL.
type snsReceiver struct {
	t      *testing.T
	srv    *httptest.Server
	client *http.Client
	mu     sync.Mutex
	msgs   []map[string]string
	heads  []http.Header
	errs   []string // what was wrong with a message; await reports them
	fail   int      // answer this many posts with 500 first
}

// problem records what was wrong with a message: handlers run on the server's goroutines,
// also while the test cleans up, so they report through await rather than t.Errorf.
func (r *snsReceiver) problem(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func newSNSReceiver(t *testing.T, caFile string) *snsReceiver {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	r := &snsReceiver{t: t, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil {
			r.problem("SNS body is not a JSON object of strings: %v\n%s", err, body)
			return
		}
		r.mu.Lock()
		failing := r.fail > 0
		if failing {
			r.fail--
		}
		r.mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if err := r.verify(m); err != nil {
			r.problem("signature of %s %s: %v", m["Type"], m["MessageId"], err)
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.heads = append(r.heads, req.Header.Clone())
		r.mu.Unlock()
		if m["Type"] == "SubscriptionConfirmation" {
			resp, err := r.client.Get(m["SubscribeURL"])
			if err != nil {
				r.problem("GET SubscribeURL: %v", err)
				return
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(out), "<SubscriptionArn>"+m["TopicArn"]+":") {
				r.problem("ConfirmSubscription: %d %s", resp.StatusCode, out)
			}
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// verify checks a message's signature as a subscriber must.
func (r *snsReceiver) verify(m map[string]string) error {
	resp, err := r.client.Get(m["SigningCertURL"])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	certPEM, _ := io.ReadAll(resp.Body)
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return io.ErrUnexpectedEOF
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	keys := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if m["Type"] != "Notification" {
		keys = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var signed strings.Builder
	for _, k := range keys {
		if v, ok := m[k]; ok {
			signed.WriteString(k + "\n" + v + "\n")
		}
	}
	sig, err := base64.StdEncoding.DecodeString(m["Signature"])
	if err != nil {
		return err
	}
	pub := cert.PublicKey.(*rsa.PublicKey)
	if m["SignatureVersion"] == "2" {
		sum := sha256.Sum256([]byte(signed.String()))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	}
	sum := sha1.Sum([]byte(signed.String()))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA1, sum[:], sig)
}

// of returns the messages of a type received so far.
func (r *snsReceiver) of(typ string) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, m := range r.msgs {
		if m["Type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

// await waits until n messages of a type have arrived (the deliverer runs in real time).
func (r *snsReceiver) await(typ string, n int) []map[string]string {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		errs := slices.Clone(r.errs)
		r.mu.Unlock()
		if len(errs) > 0 {
			r.t.Fatalf("the receiver found: %s", strings.Join(errs, "; "))
		}
		if got := r.of(typ); len(got) >= n {
			return got
		}
	}
	r.t.Fatalf("%d %s messages, want %d", len(r.of(typ)), typ, n)
	return nil
}

// snsFixture is a cloudsim with SNS on: its HTTPS listener, a subscribed receiver.
func snsFixture(t *testing.T, mutate func(*Config)) (*fixture, *snsReceiver) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	files, err := EnsureSNSCertificates(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	rcv := newSNSReceiver(t, files.CA)
	cfg := Config{Speed: frozen, SNS: SNSConfig{Addr: ln.Addr().String(), CertFile: files.Cert, KeyFile: files.Key, Endpoint: rcv.srv.URL + "/v1/alarms/sns"}}
	if mutate != nil {
		mutate(&cfg)
	}
	f := newFixture(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go f.sim.ServeSNS(ctx, ln)
	rcv.await("SubscriptionConfirmation", 1)
	return f, rcv
}

// alarmOf decodes a notification's Message, CloudWatch's alarm JSON.
func alarmOf(t *testing.T, m map[string]string) cloudWatchMessage {
	t.Helper()
	var a cloudWatchMessage
	if err := json.Unmarshal([]byte(m["Message"]), &a); err != nil {
		t.Fatalf("Message is not CloudWatch's alarm JSON: %v\n%s", err, m["Message"])
	}
	return a
}

// TestStatusCheckAlarmDeliveredSignedThroughSNS is the alarm path as CloudWatch and SNS run
// it: the subscription confirmed by its SubscribeURL; a new instance's alarms go OK once their
// checks report; a hardware failure raises StatusCheckFailed_System at the end of its second
// breaching 1-minute period, delivered as SNS's signed Notification with CloudWatch's alarm JSON
// (verified independently, SignatureVersion 1 and 2); a failed delivery is retried 20 s later;
// while the instance is stopped the alarms have no data (INSUFFICIENT_DATA, not notified), and
// on new hardware they are OK again.
func TestStatusCheckAlarmDeliveredSignedThroughSNS(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run("SignatureVersion "+itoa(int64(version)), func(t *testing.T) {
			f, rcv := snsFixture(t, func(c *Config) { c.SNS.SignatureVersion = version })
			id := f.run(t, "us-east-1a", map[string]string{"Name": "live-file"})
			f.sim.Advance(bootTime + statusInitTime + 3*time.Minute)
			oks := rcv.await("Notification", 2) // both alarms: INSUFFICIENT_DATA → OK
			for _, m := range oks {
				if a := alarmOf(t, m); a.NewStateValue != AlarmOK || a.OldStateValue != AlarmInsufficient {
					t.Fatalf("first notification of a new instance: %s → %s", a.OldStateValue, a.NewStateValue)
				}
			}

			f.sim.Advance(20 * time.Second)
			failedAt := f.sim.Now()
			f.injectFault(t, map[string]any{"type": "hardware-failure", "instance_id": id})
			rcv.mu.Lock()
			rcv.fail = 1 // the first delivery of the alarm fails: SNS retries it
			rcv.mu.Unlock()
			// The first breaching period is the minute of the failure, the second the next.
			alarmAt := failedAt.Truncate(time.Minute).Add(2 * time.Minute)
			f.sim.Advance(alarmAt.Sub(f.sim.Now()) - time.Second) // still within the second period
			time.Sleep(100 * time.Millisecond)
			if n := len(rcv.of("Notification")); n != 2 {
				t.Fatalf("an alarm before its second breaching period ended: %d notifications", n)
			}
			f.sim.Advance(time.Second)
			deadline := time.Now().Add(5 * time.Second)
			for len(f.sim.QueryEvents(EventQuery{Types: []string{"sns.delivery-retry"}})) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			f.sim.Advance(snsRetryDelay)
			got := rcv.await("Notification", 4)
			var system cloudWatchMessage
			for _, m := range got[2:] {
				if a := alarmOf(t, m); a.Trigger.MetricName == MetricStatusSystem {
					system = a
					if m["Subject"] != `ALARM: "`+AlarmName(id, MetricStatusSystem)+`" in US East (N. Virginia)` || m["SignatureVersion"] != itoa(int64(version)) {
						t.Fatalf("Subject %q SignatureVersion %q", m["Subject"], m["SignatureVersion"])
					}
				}
			}
			if system.NewStateValue != AlarmAlarm || system.OldStateValue != AlarmOK || system.StateChangeTime != alarmAt.UTC().Format(cloudWatchTime) ||
				system.Trigger.Namespace != "AWS/EC2" || system.Trigger.Period != 60 || system.Trigger.EvaluationPeriods != 2 ||
				system.Trigger.Threshold != 1 || system.Trigger.ComparisonOperator != "GreaterThanOrEqualToThreshold" ||
				len(system.Trigger.Dimensions) != 1 || system.Trigger.Dimensions[0].Name != "InstanceId" || system.Trigger.Dimensions[0].Value != id ||
				system.AWSAccountID != ownerID || system.Region != "US East (N. Virginia)" || !strings.Contains(system.AlarmDescription, "live-file") {
				t.Fatalf("the StatusCheckFailed_System alarm (want ALARM at %s):\n%+v", alarmAt, system)
			}
			if !strings.HasPrefix(system.NewStateReason, "Threshold Crossed: 2 out of the last 2 datapoints [1.0 (") {
				t.Fatalf("NewStateReason %q", system.NewStateReason)
			}

			// Moved to new hardware: a forced stop, a start, the checks pass again: OK.
			f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}, Force: aws.Bool(true)})
			f.sim.Advance(forcedHungStop)
			f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
			f.sim.Advance(bootTime + statusInitTime + 3*time.Minute)
			got = rcv.await("Notification", 6)
			for _, m := range got[4:] {
				// While it was stopped the metric had no data: INSUFFICIENT_DATA, which the
				// alarms have no action for; then OK.
				if a := alarmOf(t, m); a.NewStateValue != AlarmOK || a.OldStateValue != AlarmInsufficient {
					t.Fatalf("after the move to new hardware: %s → %s, want INSUFFICIENT_DATA → OK", a.OldStateValue, a.NewStateValue)
				}
			}
			if n := len(f.sim.QueryEvents(EventQuery{Types: []string{"cloudwatch.alarm.insufficient-data"}, Resource: id})); n != 2 {
				t.Fatalf("%d INSUFFICIENT_DATA transitions while stopped, want 2 (one per alarm)", n)
			}
			if n := len(rcv.of("Notification")); n != 6 {
				t.Fatalf("%d notifications: INSUFFICIENT_DATA is not notified", n)
			}
		})
	}
}

// TestSNSMessagesHaveAWSsFields: what cloudsim posts has the fields, headers and forms of
// AWS's published examples (testdata/aws), and CloudWatch's alarm JSON those of its sample.
func TestSNSMessagesHaveAWSsFields(t *testing.T) {
	f, rcv := snsFixture(t, nil)
	f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime + statusInitTime + 3*time.Minute)
	rcv.await("Notification", 1)
	fixture := func(name string) map[string]any {
		data, err := os.ReadFile("testdata/aws/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for typ, file := range map[string]string{"Notification": "sns-notification.json", "SubscriptionConfirmation": "sns-subscription-confirmation.json"} {
		want := slices.Sorted(maps.Keys(fixture(file)))
		got := slices.Sorted(maps.Keys(rcv.of(typ)[0]))
		if !slices.Equal(got, want) {
			t.Fatalf("%s fields %v, want AWS's %v", typ, got, want)
		}
		m := rcv.of(typ)[0]
		// The real time of publication, which a subscriber judges against its own clock.
		if ts, err := time.Parse(snsTime, m["Timestamp"]); err != nil || time.Since(ts).Abs() > time.Minute || !strings.HasSuffix(m["SigningCertURL"], ".pem") ||
			!strings.Contains(m["SigningCertURL"], "/SimpleNotificationService-") {
			t.Fatalf("%s Timestamp %q SigningCertURL %q", typ, m["Timestamp"], m["SigningCertURL"])
		}
	}
	conf := rcv.of("SubscriptionConfirmation")[0]
	if !strings.Contains(conf["SubscribeURL"], "/?Action=ConfirmSubscription&TopicArn="+DefaultTopicARN+"&Token="+conf["Token"]) ||
		conf["Message"] != "You have chosen to subscribe to the topic "+DefaultTopicARN+".\nTo confirm the subscription, visit the SubscribeURL included in this message." {
		t.Fatalf("SubscriptionConfirmation: %+v", conf)
	}
	note := rcv.of("Notification")[0]
	if !strings.Contains(note["UnsubscribeURL"], "/?Action=Unsubscribe&SubscriptionArn="+DefaultTopicARN+":") {
		t.Fatalf("UnsubscribeURL %q", note["UnsubscribeURL"])
	}
	var h http.Header
	rcv.mu.Lock()
	for i, m := range rcv.msgs {
		if m["MessageId"] == note["MessageId"] {
			h = rcv.heads[i]
		}
	}
	rcv.mu.Unlock()
	if h.Get("x-amz-sns-message-type") != "Notification" || h.Get("x-amz-sns-message-id") != note["MessageId"] ||
		h.Get("x-amz-sns-topic-arn") != DefaultTopicARN || !strings.HasPrefix(h.Get("x-amz-sns-subscription-arn"), DefaultTopicARN+":") ||
		h.Get("Content-Type") != "text/plain; charset=UTF-8" {
		t.Fatalf("headers %v", h)
	}
	var sample, ours map[string]any
	sample = fixture("cloudwatch-alarm-network-out.json")
	if err := json.Unmarshal([]byte(note["Message"]), &ours); err != nil {
		t.Fatal(err)
	}
	for k := range sample {
		if _, ok := ours[k]; !ok {
			t.Fatalf("alarm JSON lacks %s of CloudWatch's sample: %v", k, ours)
		}
	}
	for k := range sample["Trigger"].(map[string]any) {
		if _, ok := ours["Trigger"].(map[string]any)[k]; !ok {
			t.Fatalf("Trigger lacks %s of CloudWatch's sample: %v", k, ours["Trigger"])
		}
	}
	if _, err := time.Parse(cloudWatchTime, ours["StateChangeTime"].(string)); err != nil {
		t.Fatalf("StateChangeTime %q: %v", ours["StateChangeTime"], err)
	}
}

// TestSNSSubscriptionsAndRedelivery: nothing reaches an unconfirmed subscription; a wrong
// token does not confirm; Subscribe over cloudsim's Query endpoint re-sends the confirmation
// of a pending subscription and leaves a confirmed one alone; duplicates and Redeliver send a
// message again with the same MessageId; Unsubscribe stops the notifications.
func TestSNSSubscriptionsAndRedelivery(t *testing.T) {
	f, rcv := snsFixture(t, func(c *Config) { c.SNS.Duplicates = 1 })
	status, body := f.post(t, "/", "application/x-www-form-urlencoded", "Action=ConfirmSubscription&TopicArn="+DefaultTopicARN+"&Token=nope", nil)
	if status != 400 || !strings.Contains(body, "<Code>InvalidParameter</Code>") {
		t.Fatalf("a wrong token: %d %s", status, body)
	}
	status, body = f.post(t, "/", "application/x-www-form-urlencoded", "Action=Subscribe&TopicArn="+DefaultTopicARN+"&Protocol=http&Endpoint="+rcv.srv.URL+"/v1/alarms/sns", nil)
	if status != 200 || !strings.Contains(body, "<SubscriptionArn>"+DefaultTopicARN+":") {
		t.Fatalf("Subscribe of a confirmed endpoint: %d %s", status, body)
	}
	f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime + statusInitTime + 3*time.Minute)
	f.sim.Advance(2 * snsDuplicateGap)
	notes := rcv.await("Notification", 4) // two alarms, each delivered twice
	ids := map[string]int{}
	for _, m := range notes {
		ids[m["MessageId"]]++
	}
	if len(ids) != 2 {
		t.Fatalf("two messages each delivered twice: %v", ids)
	}
	if !f.sim.Redeliver(notes[0]["MessageId"]) {
		t.Fatal("Redeliver of a delivered message")
	}
	if again := rcv.await("Notification", 5); again[4]["MessageId"] != notes[0]["MessageId"] || again[4]["Signature"] != notes[0]["Signature"] {
		t.Fatalf("a redelivery is the same message: %v", again[4])
	}
	if code := f.getJSON(t, "/_sim/sns", nil); code != 200 {
		t.Fatalf("GET /_sim/sns: %d", code)
	}
	if status, _ := f.post(t, "/_sim/sns/redeliver", "application/json", `{"message_id":"nope"}`, nil); status != 404 {
		t.Fatalf("redeliver of an unknown message: %d", status)
	}
	rcv.mu.Lock()
	sub := rcv.heads[len(rcv.heads)-1].Get("x-amz-sns-subscription-arn")
	rcv.mu.Unlock()
	if status, body := f.post(t, "/", "application/x-www-form-urlencoded", "Action=Unsubscribe&SubscriptionArn="+sub, nil); status != 200 {
		t.Fatalf("Unsubscribe: %d %s", status, body)
	}
	rcv.await("UnsubscribeConfirmation", 1)
	before := len(rcv.of("Notification"))
	id := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime + statusInitTime + 3*time.Minute)
	f.injectFault(t, map[string]any{"type": "hardware-failure", "instance_id": id})
	f.sim.Advance(3 * time.Minute)
	time.Sleep(200 * time.Millisecond)
	if n := len(rcv.of("Notification")); n != before {
		t.Fatalf("notifications after Unsubscribe: %d, want %d", n, before)
	}
	if len(f.sim.QueryEvents(EventQuery{Types: []string{"cloudwatch.alarm.alarm"}})) != 2 {
		t.Fatal("the alarms still change state without a subscription")
	}
}

// TestCorruptBootDiskRaisesTheInstanceAlarm: a boot disk found corrupt after a restart fails
// the instance status check only: StatusCheckFailed_Instance goes to ALARM, the system alarm
// does not.
func TestCorruptBootDiskRaisesTheInstanceAlarm(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime + statusInitTime + 3*time.Minute)
	f.injectFault(t, map[string]any{"type": "corrupt-boot-disk", "instance_id": id})
	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	f.sim.Advance(stopTime)
	f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	f.sim.Advance(bootTime + statusInitTime + 3*time.Minute)
	var alarms []string
	for _, e := range f.sim.QueryEvents(EventQuery{Types: []string{"cloudwatch.alarm.alarm"}, Resource: id}) {
		alarms = append(alarms, e.Data["metric"].(string))
	}
	if len(alarms) != 1 || alarms[0] != MetricStatusInstance {
		t.Fatalf("alarms after a restart onto a corrupt boot disk: %v, want only %s", alarms, MetricStatusInstance)
	}
}
