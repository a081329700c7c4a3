package alarms_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/alarms"
	"github.com/anyops/anyops/alarms/snstest"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "aws", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSNSStringToSign proves the canonical string of each message type: AWS's published
// examples, field by field in the documented order (Subject only in a Notification that has
// one; SubscribeURL and Token only in confirmations).
func TestSNSStringToSign(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    []string // names, in order
	}{
		{"sns-notification.json", []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}},
		{"sns-subscription-confirmation.json", []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}},
		{"sns-unsubscribe-confirmation.json", []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			m, err := alarms.ParseSNSMessage(readFixture(t, tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]string
			if err := json.Unmarshal(readFixture(t, tc.fixture), &fields); err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for _, name := range tc.want {
				want.WriteString(name + "\n" + fields[name] + "\n")
			}
			if got := m.StringToSign(); got != want.String() {
				t.Fatalf("string to sign:\n%q\nwant\n%q", got, want.String())
			}
		})
	}
	// The Notification without a Subject leaves the field out altogether.
	m, err := alarms.ParseSNSMessage(readFixture(t, "sns-notification.json"))
	if err != nil {
		t.Fatal(err)
	}
	m.Subject = nil
	want := "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nTimestamp\n2012-05-02T00:54:06.655Z\n" +
		"TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
	if got := m.StringToSign(); got != want {
		t.Fatalf("without Subject: %q, want %q", got, want)
	}
}

// TestSNSPublishedExamplesAreStale proves AWS's published examples parse and are refused as
// stale (2012) before any certificate is fetched.
func TestSNSPublishedExamplesAreStale(t *testing.T) {
	certs := alarms.NewCertCache(nil, 0, 0) // a fetch would panic on the nil client
	v := &alarms.SNSVerifier{Topics: []string{"arn:aws:sns:us-west-2:123456789012:MyTopic"}, Certs: certs}
	for _, name := range []string{"sns-notification.json", "sns-subscription-confirmation.json", "sns-unsubscribe-confirmation.json"} {
		m, err := alarms.ParseSNSMessage(readFixture(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = v.Verify(context.Background(), m)
		if anyops.ErrorCode(err) != anyops.EFORBIDDEN || !strings.Contains(err.Error(), "Timestamp") {
			t.Errorf("%s: Verify = %v, want forbidden for its Timestamp", name, err)
		}
	}
	if certs.Fetches() != 0 {
		t.Fatalf("%d certificates fetched for stale messages", certs.Fetches())
	}
}

// TestSNSVerify runs the verifier's production path against a test SNS (its own CA, HTTPS
// certificate host and signing key): genuine messages of both signature versions pass, and
// each forgery or misdirection is refused — without a certificate fetch for those the earlier
// checks catch.
func TestSNSVerify(t *testing.T) {
	sns := snstest.NewServer(t)
	alarm := snstest.CloudWatchAlarm("live-file-status", "StatusCheckFailed_System", "i-0abc", "ALARM")
	for _, tc := range []struct {
		name string
		// message builds the message and returns its signed body.
		message   func() []byte
		wantCode  string // "" for success
		wantInErr string
		noFetch   bool
	}{
		{name: "notification v2", message: func() []byte { return sns.Sign(sns.Notification(alarm)) }},
		{name: "notification v1", message: func() []byte {
			m := sns.Notification(alarm)
			m.SignatureVersion = "1"
			return sns.Sign(m)
		}},
		{name: "notification without subject", message: func() []byte {
			m := sns.Notification(alarm)
			m.Subject = nil
			return sns.Sign(m)
		}},
		{name: "subscription confirmation v1", message: func() []byte {
			m := sns.SubscriptionConfirmation()
			m.SignatureVersion = "1"
			return sns.Sign(m)
		}},
		{name: "forged: message changed after signing", wantCode: anyops.EFORBIDDEN, wantInErr: "signature does not verify", message: func() []byte {
			m := sns.Notification(alarm)
			body := sns.Sign(m)
			return []byte(strings.Replace(string(body), "i-0abc", "i-0fff", 1))
		}},
		{name: "forged: signed with another key", wantCode: anyops.EFORBIDDEN, wantInErr: "signature does not verify", message: func() []byte {
			return sns.SignWithOtherKey(sns.Notification(alarm))
		}},
		{name: "forged: v2 signature presented as v1", wantCode: anyops.EFORBIDDEN, wantInErr: "signature does not verify", message: func() []byte {
			m := sns.Notification(alarm)
			body := sns.Sign(m)
			return []byte(strings.Replace(string(body), `"SignatureVersion":"2"`, `"SignatureVersion":"1"`, 1))
		}},
		{name: "forged: Subject added after signing", wantCode: anyops.EFORBIDDEN, wantInErr: "signature does not verify", message: func() []byte {
			m := sns.Notification(alarm)
			m.Subject = nil
			sns.Sign(m)
			s := "added"
			m.Subject = &s
			body, _ := json.Marshal(m)
			return body
		}},
		{name: "forged: certificate of another key at an allowed URL", wantCode: anyops.EFORBIDDEN, wantInErr: "signature does not verify", message: func() []byte {
			m := sns.Notification(alarm)
			m.SigningCertURL = sns.ServeOtherKeyCert("/other.pem")
			return sns.Sign(m)
		}},
		{name: "stale", wantCode: anyops.EFORBIDDEN, wantInErr: "Timestamp", noFetch: true, message: func() []byte {
			m := sns.Notification(alarm)
			m.Timestamp = time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339Nano)
			return sns.Sign(m)
		}},
		{name: "from the future", wantCode: anyops.EFORBIDDEN, wantInErr: "Timestamp", noFetch: true, message: func() []byte {
			m := sns.Notification(alarm)
			m.Timestamp = time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339Nano)
			return sns.Sign(m)
		}},
		{name: "unknown topic", wantCode: anyops.EFORBIDDEN, wantInErr: "topic", noFetch: true, message: func() []byte {
			m := sns.Notification(alarm)
			m.TopicArn = "arn:aws:sns:us-east-1:999999999999:someone-else"
			return sns.Sign(m)
		}},
		{name: "certificate host not allowed", wantCode: anyops.EFORBIDDEN, wantInErr: "not an allowed SNS host", noFetch: true, message: func() []byte {
			m := sns.Notification(alarm)
			m.SigningCertURL = "https://attacker.example.com/SimpleNotificationService-x.pem"
			return sns.Sign(m)
		}},
		{name: "certificate over http", wantCode: anyops.EFORBIDDEN, wantInErr: "https", noFetch: true, message: func() []byte {
			m := sns.Notification(alarm)
			m.SigningCertURL = "http://" + sns.Host + snstest.CertPath
			return sns.Sign(m)
		}},
		{name: "certificate URL with user info", wantCode: anyops.EFORBIDDEN, wantInErr: "https", noFetch: true, message: func() []byte {
			m := sns.Notification(alarm)
			m.SigningCertURL = "https://user@" + sns.Host + snstest.CertPath
			return sns.Sign(m)
		}},
		{name: "allowed host as a subdomain of another", wantCode: anyops.EFORBIDDEN, wantInErr: "not an allowed SNS host", noFetch: true, message: func() []byte {
			m := sns.Notification(alarm)
			m.SigningCertURL = "https://" + strings.Replace(sns.Host, ":", ".attacker.example.com:", 1) + snstest.CertPath
			return sns.Sign(m)
		}},
		{name: "expired certificate", wantCode: anyops.EFORBIDDEN, wantInErr: "not valid now", message: func() []byte {
			m := sns.Notification(alarm)
			m.SigningCertURL = sns.ServeExpiredCert("/expired.pem")
			return sns.Sign(m)
		}},
		{name: "not a certificate", wantCode: anyops.EFORBIDDEN, wantInErr: "not a PEM certificate", message: func() []byte {
			m := sns.Notification(alarm)
			m.SigningCertURL = sns.Serve("/garbage.pem", []byte("<html>hello</html>"))
			return sns.Sign(m)
		}},
		{name: "certificate missing", wantCode: anyops.EUNAVAILABLE, wantInErr: "cannot be fetched", message: func() []byte {
			m := sns.Notification(alarm)
			m.SigningCertURL = "https://" + sns.Host + "/missing.pem"
			return sns.Sign(m)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs := alarms.NewCertCache(sns.Client(), 0, 0)
			v := &alarms.SNSVerifier{Topics: []string{snstest.Topic}, CertHosts: []string{sns.Host}, Certs: certs}
			m, err := alarms.ParseSNSMessage(tc.message())
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = v.Verify(context.Background(), m)
			if got := anyops.ErrorCode(err); got != tc.wantCode {
				t.Fatalf("Verify = %v (code %q), want code %q", err, got, tc.wantCode)
			}
			if tc.wantInErr != "" && !strings.Contains(err.Error(), tc.wantInErr) {
				t.Fatalf("Verify = %v, want it to mention %q", err, tc.wantInErr)
			}
			if tc.noFetch && certs.Fetches() != 0 {
				t.Fatalf("%d certificate fetches for a message refused before fetching", certs.Fetches())
			}
		})
	}
}

// TestSNSDefaultCertHosts proves that without CertHosts the allowed host is SNS's own in each
// topic's region, so a production deployment needs only its topic ARNs.
func TestSNSDefaultCertHosts(t *testing.T) {
	v := &alarms.SNSVerifier{Topics: []string{"arn:aws:sns:eu-west-1:123456789012:a", "arn:aws-cn:sns:cn-north-1:123456789012:b", "not-an-arn"}}
	for raw, ok := range map[string]bool{
		"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem":     true,
		"https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem": true,
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem":     false,
		"https://sns.eu-west-1.amazonaws.com.evil.example/x.pem":                  false,
		"https://sns.eu-west-1.amazonaws.com:8443/x.pem":                          false,
	} {
		if _, err := v.AllowedURL(raw); (err == nil) != ok {
			t.Errorf("AllowedURL(%s) = %v, want allowed %v", raw, err, ok)
		}
	}
}

// TestCertCacheBoundedExpiringShared proves the certificate cache holds at most its bound
// (least recently used out first), fetches again after the TTL, and fetches once for many
// concurrent requests of one URL.
func TestCertCacheBoundedExpiringShared(t *testing.T) {
	sns := snstest.NewServer(t)
	urls := []string{sns.CertURL, sns.ServeOtherKeyCert("/b.pem"), sns.ServeOtherKeyCert("/c.pem")}
	ctx := context.Background()
	certs := alarms.NewCertCache(sns.Client(), time.Hour, 2)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := certs.Get(ctx, urls[0]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := certs.Fetches(); n != 1 {
		t.Fatalf("10 concurrent gets of one URL fetched %d times, want 1", n)
	}
	for _, u := range urls[1:] {
		if _, err := certs.Get(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if certs.Len() != 2 {
		t.Fatalf("cache holds %d certificates, bound 2", certs.Len())
	}
	// urls[0] was the least recently used: evicted, so fetched again.
	if _, err := certs.Get(ctx, urls[0]); err != nil || certs.Fetches() != 4 {
		t.Fatalf("after eviction: %v, %d fetches, want 4", err, certs.Fetches())
	}
	short := alarms.NewCertCache(sns.Client(), time.Millisecond, 2)
	_, _ = short.Get(ctx, urls[0])
	time.Sleep(5 * time.Millisecond)
	_, _ = short.Get(ctx, urls[0])
	if short.Fetches() != 2 {
		t.Fatalf("after the TTL: %d fetches, want 2", short.Fetches())
	}
}

// TestParseSNSMessageRejects proves malformed messages are EINVALID with a message naming the
// problem.
func TestParseSNSMessageRejects(t *testing.T) {
	good := map[string]any{}
	if err := json.Unmarshal(readFixture(t, "sns-notification.json"), &good); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	for _, tc := range []struct {
		name, want string
		body       []byte
	}{
		{"not JSON", "malformed JSON", []byte("Type=Notification")},
		{"array", "expected a JSON object", []byte("[]")},
		{"trailing data", "after the JSON object", append(readFixture(t, "sns-notification.json"), []byte(" {}")...)},
		{"unknown type", "Type", with("Type", "Gossip")},
		{"number field", "MessageId", with("MessageId", 12)},
		{"no message id", "MessageId is missing", with("MessageId", nil)},
		{"no signature", "Signature is missing", with("Signature", nil)},
		{"bad timestamp", "Timestamp", with("Timestamp", "yesterday")},
		{"bad version", "SignatureVersion", with("SignatureVersion", "3")},
		{"signature not base64", "base64", with("Signature", "!!!")},
		{"huge URL", "longer than", with("SigningCertURL", "https://x/"+strings.Repeat("a", 5000))},
		{"confirmation without token", "Token is missing", with("Type", alarms.SNSSubscriptionConfirmation)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alarms.ParseSNSMessage(tc.body)
			if anyops.ErrorCode(err) != anyops.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseSNSMessage = %v, want invalid mentioning %q", err, tc.want)
			}
		})
	}
}

// TestConfirmerConfirmsInTheBackground proves a confirmation GETs the SubscribeURL once, reports
// the subscription ARN, and that a SubscribeURL SNS refuses is given up at once and reported to nobody.
func TestConfirmerConfirmsInTheBackground(t *testing.T) {
	sns := snstest.NewServer(t)
	var got []string
	var mu sync.Mutex
	c := alarms.NewConfirmer(sns.Client(), slog.New(slog.DiscardHandler), func(_ context.Context, topic, arn string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, topic+" "+arn)
	})
	m := sns.SubscriptionConfirmation()
	if !c.Confirm(m, m.SubscribeURL) {
		t.Fatal("confirmation dropped")
	}
	c.Wait()
	if sns.Confirmations.Load() != 1 || len(got) != 1 || !strings.HasPrefix(got[0], snstest.Topic+" "+snstest.Topic+":") {
		t.Fatalf("confirmations %d, reported %v", sns.Confirmations.Load(), got)
	}
	c.Confirm(m, "https://"+sns.Host+"/?Action=Nothing")
	c.Wait()
	if len(got) != 1 {
		t.Fatalf("a refused confirmation was reported: %v", got)
	}
}
