// Package alarms takes alarms in: it verifies SNS messages (CloudWatch alarms), reads
// Alertmanager webhooks and CloudWatch alarm payloads, and turns every alarm, whatever its
// source (the API's HTTP endpoints or the NFSWatch workflow's probe), into an incident and
// the start or join of its recovery workflow, through one Intake and one table of Rules.
// It never calls the cloud.
package alarms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/workflows"
)

// SNS message types (the Type field and the x-amz-sns-message-type header).
const (
	SNSNotification             = "Notification"
	SNSSubscriptionConfirmation = "SubscriptionConfirmation"
	SNSUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// SNSMessage is the JSON document SNS POSTs to an HTTP/S subscription (AWS: "HTTP/HTTPS
// notification JSON format" and the confirmation formats).
type SNSMessage struct {
	Type      string `json:"Type"`
	MessageID string `json:"MessageId"`
	TopicArn  string `json:"TopicArn"`
	// Subject is nil when the field is absent: the string to sign has it only when present.
	Subject          *string `json:"Subject,omitempty"`
	Message          string  `json:"Message"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
	// Confirmations only.
	Token        string `json:"Token,omitempty"`
	SubscribeURL string `json:"SubscribeURL,omitempty"`
	// Notifications only.
	UnsubscribeURL string `json:"UnsubscribeURL,omitempty"`

	// Set by ParseSNSMessage.
	sentAt    time.Time
	signature []byte
}

// SentAt is the message's Timestamp.
func (m *SNSMessage) SentAt() time.Time { return m.sentAt }

// maxSNSField bounds every field but Message: ids, ARNs, URLs and signatures are far shorter.
const maxSNSField = 4096

// ParseSNSMessage decodes an SNS message and checks its form: a known Type, the fields that
// type requires, a Timestamp in RFC 3339, SignatureVersion 1 or 2, a base64 Signature.
// Unknown fields are allowed (SNS adds some, MessageAttributes for one). Errors are EINVALID;
// whether the message is authentic is Verify's question.
func ParseSNSMessage(body []byte) (*SNSMessage, error) {
	var m SNSMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return nil, anyops.Errorf(anyops.EINVALID, "SNS message: not a JSON object of strings: %s", workflows.DescribeJSONError(err))
	}
	if dec.More() {
		return nil, anyops.Errorf(anyops.EINVALID, "SNS message: unexpected data after the JSON object")
	}
	required := []struct{ name, value string }{
		{"Type", m.Type}, {"MessageId", m.MessageID}, {"TopicArn", m.TopicArn}, {"Timestamp", m.Timestamp},
		{"SignatureVersion", m.SignatureVersion}, {"Signature", m.Signature}, {"SigningCertURL", m.SigningCertURL},
	}
	switch m.Type {
	case SNSNotification:
	case SNSSubscriptionConfirmation, SNSUnsubscribeConfirmation:
		required = append(required, struct{ name, value string }{"Token", m.Token}, struct{ name, value string }{"SubscribeURL", m.SubscribeURL})
	default:
		return nil, anyops.Errorf(anyops.EINVALID, "SNS message: Type %q is not one of %s, %s, %s", m.Type, SNSNotification, SNSSubscriptionConfirmation, SNSUnsubscribeConfirmation)
	}
	for _, f := range required {
		if f.value == "" {
			return nil, anyops.Errorf(anyops.EINVALID, "SNS message: %s is missing", f.name)
		}
	}
	for _, f := range []struct{ name, value string }{
		{"MessageId", m.MessageID}, {"TopicArn", m.TopicArn}, {"Timestamp", m.Timestamp}, {"Signature", m.Signature},
		{"SigningCertURL", m.SigningCertURL}, {"Token", m.Token}, {"SubscribeURL", m.SubscribeURL}, {"UnsubscribeURL", m.UnsubscribeURL},
	} {
		if len(f.value) > maxSNSField {
			return nil, anyops.Errorf(anyops.EINVALID, "SNS message: %s is longer than %d bytes", f.name, maxSNSField)
		}
	}
	if m.Subject != nil && len(*m.Subject) > maxSNSField {
		return nil, anyops.Errorf(anyops.EINVALID, "SNS message: Subject is longer than %d bytes", maxSNSField)
	}
	t, err := time.Parse(time.RFC3339Nano, m.Timestamp)
	if err != nil {
		return nil, anyops.Errorf(anyops.EINVALID, "SNS message: Timestamp %q is not an RFC 3339 time", m.Timestamp)
	}
	m.sentAt = t
	if m.SignatureVersion != "1" && m.SignatureVersion != "2" {
		return nil, anyops.Errorf(anyops.EINVALID, "SNS message: SignatureVersion %q is not 1 or 2", m.SignatureVersion)
	}
	if m.signature, err = base64.StdEncoding.DecodeString(m.Signature); err != nil || len(m.signature) == 0 {
		return nil, anyops.Errorf(anyops.EINVALID, "SNS message: Signature is not base64")
	}
	return &m, nil
}

// StringToSign is the canonical string SNS signs: for each field of the message's type, in
// this order, its name, a newline, its value and a newline. Notification: Message, MessageId,
// Subject (only when present), Timestamp, TopicArn, Type. SubscriptionConfirmation and
// UnsubscribeConfirmation: Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type.
func (m *SNSMessage) StringToSign() string {
	var b strings.Builder
	add := func(name, value string) { b.WriteString(name + "\n" + value + "\n") }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == SNSNotification {
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
	} else {
		add("SubscribeURL", m.SubscribeURL)
	}
	add("Timestamp", m.Timestamp)
	if m.Type != SNSNotification {
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

// hash is the digest SignatureVersion names: 1 is SHA1withRSA, 2 SHA256withRSA.
func (m *SNSMessage) hash() (crypto.Hash, []byte) {
	msg := []byte(m.StringToSign())
	if m.SignatureVersion == "1" {
		sum := sha1.Sum(msg)
		return crypto.SHA1, sum[:]
	}
	sum := sha256.Sum256(msg)
	return crypto.SHA256, sum[:]
}

// SNSVerifier decides whether an SNS message is authentic and meant for us.
type SNSVerifier struct {
	// Topics are the TopicArns accepted; a message from any other topic is refused (and none
	// is accepted while the list is empty).
	Topics []string
	// CertHosts are the hosts SigningCertURL and SubscribeURL may name (host or host:port, as
	// in the URL); empty means sns.<region>.amazonaws.com of each topic's region.
	CertHosts []string
	// MaxAge is how far a message's Timestamp may be from now, either way; zero means
	// DefaultSNSMaxAge.
	MaxAge time.Duration
	// Certs fetches and caches the signing certificates.
	Certs *CertCache
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultSNSMaxAge is how old (or how far in the future) an SNS message may be. SNS retries a
// failed delivery for up to an hour (its HTTP delivery policy's limit), so a genuine
// redelivery is younger than that.
const DefaultSNSMaxAge = time.Hour

// Verify checks, in this order and without fetching anything for a message that fails an
// earlier check: the TopicArn is allowed, the Timestamp is fresh, SigningCertURL is https on an
// allowed host, and the Signature verifies with that certificate's RSA key (valid now) over
// the message's canonical string with the hash its SignatureVersion names. Refusals are
// EFORBIDDEN; a certificate that cannot be fetched is EUNAVAILABLE (SNS retries on 5xx).
func (v *SNSVerifier) Verify(ctx context.Context, m *SNSMessage) error {
	if !v.topicAllowed(m.TopicArn) {
		return anyops.Errorf(anyops.EFORBIDDEN, "SNS topic %s is not one this endpoint accepts", m.TopicArn)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	maxAge := v.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultSNSMaxAge
	}
	if age := now.Sub(m.sentAt); age > maxAge || age < -maxAge {
		return anyops.Errorf(anyops.EFORBIDDEN, "SNS message %s has Timestamp %s, %s from now: more than %s", m.MessageID, m.Timestamp, age.Round(time.Second), maxAge)
	}
	certURL, err := v.AllowedURL(m.SigningCertURL)
	if err != nil {
		return anyops.Errorf(anyops.EFORBIDDEN, "SNS SigningCertURL: %s", anyops.ErrorMessage(err))
	}
	cert, err := v.Certs.Get(ctx, certURL)
	if err != nil {
		return err
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return anyops.Errorf(anyops.EFORBIDDEN, "SNS signing certificate %s is not valid now (valid %s to %s)", certURL, cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return anyops.Errorf(anyops.EFORBIDDEN, "SNS signing certificate %s has no RSA key", certURL)
	}
	h, digest := m.hash()
	if err := rsa.VerifyPKCS1v15(key, h, digest, m.signature); err != nil {
		return anyops.Errorf(anyops.EFORBIDDEN, "SNS message %s: the signature does not verify (SignatureVersion %s)", m.MessageID, m.SignatureVersion)
	}
	return nil
}

func (v *SNSVerifier) topicAllowed(arn string) bool {
	for _, t := range v.Topics {
		if t == arn {
			return true
		}
	}
	return false
}

// AllowedURL parses u and accepts it only as an https URL, without user info, on one of the
// allowed hosts: where SigningCertURL and SubscribeURL may point. Errors are EINVALID.
func (v *SNSVerifier) AllowedURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", anyops.Errorf(anyops.EINVALID, "%q is not a URL", raw)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", anyops.Errorf(anyops.EINVALID, "%q is not an https URL of a host", raw)
	}
	for _, h := range v.allowedHosts() {
		if strings.EqualFold(u.Host, h) {
			return u.String(), nil
		}
	}
	return "", anyops.Errorf(anyops.EINVALID, "host %s is not an allowed SNS host (%s)", u.Host, strings.Join(v.allowedHosts(), ", "))
}

// allowedHosts are CertHosts, or by default SNS's own host in the region of each topic.
func (v *SNSVerifier) allowedHosts() []string {
	if len(v.CertHosts) > 0 {
		return v.CertHosts
	}
	var hosts []string
	for _, t := range v.Topics {
		if h := DefaultSNSHost(t); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// DefaultSNSHost is the host SNS signs from in the region of a topic ARN
// (arn:aws:sns:us-east-1:123456789012:name → sns.us-east-1.amazonaws.com; China regions end in
// amazonaws.com.cn); "" for a string that is not an SNS topic ARN.
func DefaultSNSHost(topicArn string) string {
	parts := strings.Split(topicArn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[3] == "" {
		return ""
	}
	host := "sns." + parts[3] + ".amazonaws.com"
	if parts[1] == "aws-cn" {
		host += ".cn"
	}
	return host
}
