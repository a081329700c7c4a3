// Package snstest plays SNS for tests: a test CA, an HTTPS server (certificate from that CA)
// that serves a signing certificate and answers ConfirmSubscription, and messages signed with
// the signing key exactly as SNS signs them, so that the verifier runs its production path.
package snstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/anyops/anyops/alarms"
)

// Topic is the topic ARN the test messages come from.
const Topic = "arn:aws:sns:us-east-1:123456789012:anyops-alarms"

// CertPath is where the server serves the signing certificate.
const CertPath = "/SimpleNotificationService-test.pem"

// Server is a test SNS: its CA, HTTPS server and signing key.
type Server struct {
	t *testing.T
	// CAFile is the PEM file of the CA that issued the server's TLS certificate: what
	// NewHTTPClient is given to trust it.
	CAFile string
	// Host is the server's host:port, the allowed SNS host of the tests.
	Host string
	// CertURL is the SigningCertURL of the messages it signs.
	CertURL string
	key     *rsa.PrivateKey
	srv     *httptest.Server
	// Confirmations counts the ConfirmSubscription requests the server answered.
	Confirmations atomic.Int64
	mu            sync.Mutex
	served        map[string][]byte
}

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
	otherK  *rsa.PrivateKey
)

// keys are made once per test binary: RSA key generation is slow.
func keys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			otherK, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		if err != nil {
			panic(err)
		}
	})
	return rsaKey, otherK
}

// NewServer starts a test SNS until the test ends.
func NewServer(t *testing.T) *Server {
	t.Helper()
	key, _ := keys(t)
	s := &Server{t: t, key: key, served: map[string][]byte{}}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "anyops test SNS CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	check(t, err)
	ca, err := x509.ParseCertificate(caDER)
	check(t, err)
	s.CAFile = filepath.Join(t.TempDir(), "sns-ca.pem")
	check(t, os.WriteFile(s.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644))

	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	tlsDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, &tlsKey.PublicKey, caKey)
	check(t, err)

	s.served[CertPath] = s.signingCert(key, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{file}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, ok := s.served[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("Action") != "ConfirmSubscription" || r.URL.Query().Get("Token") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		s.Confirmations.Add(1)
		fmt.Fprintf(w, `<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ConfirmSubscriptionResult><SubscriptionArn>%s:%s</SubscriptionArn></ConfirmSubscriptionResult>
  <ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>
</ConfirmSubscriptionResponse>`, r.URL.Query().Get("TopicArn"), uuid.NewString(), uuid.NewString())
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{tlsDER}, PrivateKey: tlsKey}}}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.Host = s.srv.Listener.Addr().String()
	s.CertURL = "https://" + s.Host + CertPath
	return s
}

// signingCert is a self-signed certificate of key valid from notBefore to notAfter, as PEM.
func (s *Server) signingCert(key *rsa.PrivateKey, notBefore, notAfter time.Time) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	check(s.t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Serve makes the server answer path with body (a certificate of another key, garbage, ...)
// and returns its URL.
func (s *Server) Serve(path string, body []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.served[path] = body
	return "https://" + s.Host + path
}

// ServeOtherKeyCert serves, at path, a valid certificate of another RSA key than the one the
// server signs with, and returns its URL.
func (s *Server) ServeOtherKeyCert(path string) string {
	_, other := keys(s.t)
	return s.Serve(path, s.signingCert(other, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)))
}

// ServeExpiredCert serves, at path, a certificate of the signing key that expired an hour
// ago, and returns its URL.
func (s *Server) ServeExpiredCert(path string) string {
	return s.Serve(path, s.signingCert(s.key, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)))
}

// Client is an HTTPS client that trusts the server's CA, as the API's is configured in dev.
func (s *Server) Client() *http.Client {
	c, err := alarms.NewHTTPClient(s.CAFile)
	check(s.t, err)
	return c
}

// Notification returns a Notification from Topic carrying message, sent now, not signed yet.
func (s *Server) Notification(message string) *alarms.SNSMessage {
	subject := "ALARM"
	return &alarms.SNSMessage{
		Type: alarms.SNSNotification, MessageID: uuid.NewString(), TopicArn: Topic, Subject: &subject,
		Message: message, Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		SignatureVersion: "2", SigningCertURL: s.CertURL,
		UnsubscribeURL: "https://" + s.Host + "/?Action=Unsubscribe&SubscriptionArn=" + Topic + ":test",
	}
}

// SubscriptionConfirmation returns a SubscriptionConfirmation from Topic, not signed yet.
func (s *Server) SubscriptionConfirmation() *alarms.SNSMessage {
	token := "token-" + uuid.NewString()
	return &alarms.SNSMessage{
		Type: alarms.SNSSubscriptionConfirmation, MessageID: uuid.NewString(), TopicArn: Topic, Token: token,
		Message:      "You have chosen to subscribe to the topic " + Topic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: "https://" + s.Host + "/?Action=ConfirmSubscription&TopicArn=" + Topic + "&Token=" + token,
		Timestamp:    time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), SignatureVersion: "2", SigningCertURL: s.CertURL,
	}
}

// Sign signs m with the server's key under m.SignatureVersion ("1" SHA1withRSA, "2"
// SHA256withRSA) and returns its JSON, as SNS POSTs it.
func (s *Server) Sign(m *alarms.SNSMessage) []byte {
	return s.signWith(s.key, m)
}

// SignWithOtherKey signs m with a key that is not the one its certificate holds: a forgery.
func (s *Server) SignWithOtherKey(m *alarms.SNSMessage) []byte {
	_, other := keys(s.t)
	return s.signWith(other, m)
}

func (s *Server) signWith(key *rsa.PrivateKey, m *alarms.SNSMessage) []byte {
	msg := []byte(m.StringToSign())
	var (
		h      crypto.Hash
		digest []byte
	)
	if m.SignatureVersion == "1" {
		sum := sha1.Sum(msg)
		h, digest = crypto.SHA1, sum[:]
	} else {
		sum := sha256.Sum256(msg)
		h, digest = crypto.SHA256, sum[:]
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, digest)
	check(s.t, err)
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	body, err := json.Marshal(m)
	check(s.t, err)
	return body
}

// CloudWatchAlarm is the Message CloudWatch publishes when the alarm on an EC2 status check
// metric of instance changes to state (ALARM or OK).
func CloudWatchAlarm(name, metric, instance, state string) string {
	b, _ := json.Marshal(map[string]any{
		"AlarmName": name, "AWSAccountId": "123456789012", "NewStateValue": state, "OldStateValue": "OK",
		"NewStateReason":  "Threshold Crossed: 2 out of the last 2 datapoints were greater than or equal to the threshold (1.0).",
		"StateChangeTime": time.Now().UTC().Format("2006-01-02T15:04:05.000-0700"), "Region": "US East (N. Virginia)",
		"AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:" + name,
		"Trigger": map[string]any{
			"MetricName": metric, "Namespace": "AWS/EC2", "StatisticType": "Statistic", "Statistic": "MAXIMUM",
			"Dimensions": []map[string]string{{"value": instance, "name": "InstanceId"}},
			"Period":     60, "EvaluationPeriods": 2, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Threshold": 1.0,
		},
	})
	return string(b)
}

func check(t *testing.T, err error) {
	if err != nil {
		t.Helper()
		t.Fatal(err)
	}
}
