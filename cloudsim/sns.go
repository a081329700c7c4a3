// SNS, as cloudsim plays it for the alarms: one topic, HTTP/HTTPS subscriptions confirmed by
// a GET of their SubscribeURL, messages signed exactly as SNS signs them (SignatureVersion 1,
// SHA1withRSA; 2, SHA256withRSA) with a certificate served over HTTPS at SigningCertURL, and
// delivered with SNS's default HTTP/S delivery policy (3 retries, 20 s apart; 5xx, 429 and
// transport errors are retried, other 4xx are not), at least once.

package cloudsim

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SNSConfig configures cloudsim's SNS. Without CertFile and KeyFile it is off: alarms are
// evaluated and logged, nothing is published.
type SNSConfig struct {
	// Addr is the HTTPS listener's address (host:port): SigningCertURL, SubscribeURL and
	// UnsubscribeURL name it.
	Addr string
	// CertFile and KeyFile are the PEM signing certificate and its RSA key; the certificate
	// is also the HTTPS listener's.
	CertFile, KeyFile string
	// TopicARN is the topic the alarms publish to.
	TopicARN string
	// Endpoint, when set, is subscribed to the topic at start (as Subscribe does).
	Endpoint string
	// SignatureVersion is 1 (SHA1withRSA) or 2 (SHA256withRSA); 0 means 1.
	SignatureVersion int
	// Duplicates is how many extra times each notification is delivered (at-least-once).
	Duplicates int
}

// DefaultTopicARN is the topic the alarms publish to unless configured.
const DefaultTopicARN = "arn:aws:sns:us-east-1:" + ownerID + ":anyops-alarms"

// SNS's default HTTP/S delivery policy, and its timeout for one attempt.
const (
	snsRetries       = 3
	snsRetryDelay    = 20 * time.Second // simulated
	snsAttemptTimout = 15 * time.Second // real: an HTTP request
	snsDuplicateGap  = time.Second      // simulated, between a delivery and its duplicate
	maxDeliveries    = 200
)

// snsIdentity is the loaded signing key and certificate.
type snsIdentity struct {
	key     *rsa.PrivateKey
	certPEM []byte
	tls     tls.Certificate
	path    string // the certificate's path on the HTTPS listener
}

func loadSNSIdentity(cfg SNSConfig) (*snsIdentity, error) {
	certPEM, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("SNS certificate and key: %w", err)
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the SNS signing key must be RSA (SNS signs SHA1withRSA or SHA256withRSA)")
	}
	block, _ := pem.Decode(certPEM)
	sum := sha256.Sum256(block.Bytes)
	return &snsIdentity{key: key, certPEM: certPEM, tls: pair, path: "/SimpleNotificationService-" + hex.EncodeToString(sum[:16]) + ".pem"}, nil
}

// subscription is one endpoint subscribed to the topic.
type subscription struct {
	ARN       string    `json:"arn"`
	TopicARN  string    `json:"topic_arn"`
	Protocol  string    `json:"protocol"` // http, https
	Endpoint  string    `json:"endpoint"`
	Token     string    `json:"token"`
	Confirmed bool      `json:"confirmed"`
	Created   time.Time `json:"created"`
}

// Delivery is one message on its way to one subscription, as GET /_sim/sns lists them.
type Delivery struct {
	MessageID    string    `json:"message_id"`
	Type         string    `json:"type"` // Notification, SubscriptionConfirmation, UnsubscribeConfirmation
	Subscription string    `json:"subscription"`
	Endpoint     string    `json:"endpoint"`
	Body         string    `json:"body"`
	Due          time.Time `json:"due"`
	Attempts     int       `json:"attempts"`
	Status       string    `json:"status"` // pending, delivered, failed
	LastError    string    `json:"last_error,omitempty"`
	Duplicate    bool      `json:"duplicate,omitempty"`
}

func (s *Sim) snsTopic() string {
	if s.cfg.SNS.TopicARN != "" {
		return s.cfg.SNS.TopicARN
	}
	return DefaultTopicARN
}

// snsBase is the HTTPS listener's base URL.
func (s *Sim) snsBase() string { return "https://" + s.cfg.SNS.Addr }

// snsMessage is an SNS message as an HTTP/S endpoint receives it, its fields in SNS's order.
type snsMessage struct {
	Type, MessageID, Token, TopicArn, Subject, Message, SubscribeURL, Timestamp string
	SignatureVersion, Signature, SigningCertURL, UnsubscribeURL                 string
}

// stringToSign is the canonical string SNS signs: name and value lines of the message's
// fields in alphabetical order — Message, MessageId, Subject (when there is one), Timestamp,
// TopicArn, Type for a notification; Message, MessageId, SubscribeURL, Timestamp, Token,
// TopicArn, Type for a (un)subscription confirmation.
func (m *snsMessage) stringToSign() string {
	var b strings.Builder
	line := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	line("Message", m.Message)
	line("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != "" {
			line("Subject", m.Subject)
		}
	} else {
		line("SubscribeURL", m.SubscribeURL)
	}
	line("Timestamp", m.Timestamp)
	if m.Type != "Notification" {
		line("Token", m.Token)
	}
	line("TopicArn", m.TopicArn)
	line("Type", m.Type)
	return b.String()
}

// sign signs the message with the identity, as SignatureVersion says.
func (id *snsIdentity) sign(m *snsMessage) error {
	var digest []byte
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		sum := sha1.Sum([]byte(m.stringToSign()))
		digest, hash = sum[:], crypto.SHA1
	case "2":
		sum := sha256.Sum256([]byte(m.stringToSign()))
		digest, hash = sum[:], crypto.SHA256
	default:
		return fmt.Errorf("SignatureVersion %q", m.SignatureVersion)
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, id.key, hash, digest)
	if err != nil {
		return err
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	return nil
}

// body renders the message as SNS posts it: a JSON document laid out as SNS lays it out.
func (m *snsMessage) body() string {
	var b strings.Builder
	b.WriteString("{\n")
	first := true
	field := func(k, v string) {
		if v == "" && k != "Message" {
			return
		}
		if !first {
			b.WriteString(",\n")
		}
		first = false
		var enc bytes.Buffer
		e := json.NewEncoder(&enc)
		e.SetEscapeHTML(false)
		_ = e.Encode(v)
		fmt.Fprintf(&b, "  %q : %s", k, strings.TrimSuffix(enc.String(), "\n"))
	}
	field("Type", m.Type)
	field("MessageId", m.MessageID)
	field("Token", m.Token)
	field("TopicArn", m.TopicArn)
	field("Subject", m.Subject)
	field("Message", m.Message)
	field("SubscribeURL", m.SubscribeURL)
	field("Timestamp", m.Timestamp)
	field("SignatureVersion", m.SignatureVersion)
	field("Signature", m.Signature)
	field("SigningCertURL", m.SigningCertURL)
	field("UnsubscribeURL", m.UnsubscribeURL)
	b.WriteString("\n}")
	return b.String()
}

// snsTime is SNS's Timestamp: 2012-05-02T00:54:06.655Z.
const snsTime = "2006-01-02T15:04:05.000Z"

// newMessage makes and signs a message of a subscription; callers hold s.mu.
func (s *Sim) newMessage(typ string, sub *subscription, subject, text string) (*snsMessage, error) {
	v := s.cfg.SNS.SignatureVersion
	if v == 0 {
		v = 1
	}
	// Timestamp is the real time of publication: the subscriber lives on the real clock and
	// judges a message's age against it, as it judges SNS's (the alarm inside carries the
	// simulated moments).
	m := &snsMessage{Type: typ, MessageID: uuid.NewString(), TopicArn: sub.TopicARN, Subject: subject, Message: text,
		Timestamp: s.now().UTC().Format(snsTime), SignatureVersion: fmt.Sprint(v), SigningCertURL: s.snsBase() + s.sns.path}
	switch typ {
	case "Notification":
		m.UnsubscribeURL = s.snsBase() + "/?Action=Unsubscribe&SubscriptionArn=" + sub.ARN
	default:
		m.Token = sub.Token
		m.SubscribeURL = s.snsBase() + "/?Action=ConfirmSubscription&TopicArn=" + sub.TopicARN + "&Token=" + sub.Token
	}
	return m, s.sns.sign(m)
}

// publish sends a notification to every confirmed subscription of the topic (an unconfirmed
// one gets nothing, as on SNS). Callers hold s.mu.
func (s *Sim) publish(topic, subject, text string, at time.Time) {
	if s.sns == nil {
		return
	}
	for _, arn := range sortedKeys(s.st.Subscriptions) {
		sub := s.st.Subscriptions[arn]
		if sub.TopicARN != topic || !sub.Confirmed {
			continue
		}
		m, err := s.newMessage("Notification", sub, subject, text)
		if err != nil {
			s.log.Error("cloudsim: sign SNS message", "err", err)
			continue
		}
		s.enqueue(m, sub, at, false)
		for i := 1; i <= s.cfg.SNS.Duplicates; i++ {
			s.enqueue(m, sub, at.Add(time.Duration(i)*snsDuplicateGap), true)
		}
		s.eventData(at, "sns.published", topic, map[string]any{"message_id": m.MessageID, "subscription": sub.ARN, "subject": subject},
			"SNS message %s to %s: %s", m.MessageID, sub.Endpoint, subject)
	}
}

// enqueue schedules a delivery; callers hold s.mu.
func (s *Sim) enqueue(m *snsMessage, sub *subscription, due time.Time, duplicate bool) {
	s.st.Deliveries = append(s.st.Deliveries, &Delivery{MessageID: m.MessageID, Type: m.Type, Subscription: sub.ARN,
		Endpoint: sub.Endpoint, Body: m.body(), Due: due, Status: "pending", Duplicate: duplicate})
	if n := len(s.st.Deliveries); n > maxDeliveries {
		s.st.Deliveries = s.st.Deliveries[n-maxDeliveries:]
	}
	s.markDirty()
}

// subscribe subscribes an endpoint (Subscribe): a new one, or a pending one again, is sent a
// SubscriptionConfirmation; a confirmed one is left as it is. Callers hold s.mu.
func (s *Sim) subscribe(topic, protocol, endpoint string, at time.Time) (*subscription, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Scheme != protocol {
		return nil, fmt.Errorf("Invalid parameter: Endpoint must be an %s URL, got %q", protocol, endpoint)
	}
	var sub *subscription
	for _, x := range s.st.Subscriptions {
		if x.TopicARN == topic && x.Endpoint == endpoint {
			sub = x
		}
	}
	if sub == nil {
		sub = &subscription{ARN: topic + ":" + uuid.NewString(), TopicARN: topic, Protocol: protocol, Endpoint: endpoint,
			Token: randomToken(), Created: at}
		s.st.Subscriptions[sub.ARN] = sub
	}
	if sub.Confirmed {
		return sub, nil
	}
	text := fmt.Sprintf("You have chosen to subscribe to the topic %s.\nTo confirm the subscription, visit the SubscribeURL included in this message.", topic)
	m, err := s.newMessage("SubscriptionConfirmation", sub, "", text)
	if err != nil {
		return nil, err
	}
	s.enqueue(m, sub, at, false)
	s.eventData(at, "sns.subscription.pending", topic, map[string]any{"subscription": sub.ARN, "endpoint": endpoint},
		"SNS subscription of %s to %s pending confirmation", endpoint, topic)
	return sub, nil
}

// randomToken is a confirmation token like SNS's: 128 hex digits.
func randomToken() string {
	b := make([]byte, 64)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// confirm confirms the subscription the token belongs to (ConfirmSubscription).
func (s *Sim) confirm(topic, token string, at time.Time) (*subscription, *apiError) {
	if topic != s.snsTopic() {
		return nil, &apiError{Code: "NotFound", Message: "Topic does not exist", Status: 404}
	}
	for _, sub := range s.st.Subscriptions {
		if sub.TopicARN == topic && sub.Token == token && token != "" {
			if !sub.Confirmed {
				sub.Confirmed = true
				s.eventData(at, "sns.subscription.confirmed", topic, map[string]any{"subscription": sub.ARN, "endpoint": sub.Endpoint},
					"SNS subscription of %s to %s confirmed", sub.Endpoint, topic)
				s.markDirty()
			}
			return sub, nil
		}
	}
	return nil, &apiError{Code: "InvalidParameter", Message: "Invalid token", Status: 400}
}

// unsubscribe deletes a subscription and sends it an UnsubscribeConfirmation.
func (s *Sim) unsubscribe(arn string, at time.Time) *apiError {
	sub := s.st.Subscriptions[arn]
	if sub == nil {
		return &apiError{Code: "NotFound", Message: "Subscription does not exist", Status: 404}
	}
	delete(s.st.Subscriptions, arn)
	text := fmt.Sprintf("You have chosen to deactivate subscription %s.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message.", arn)
	if m, err := s.newMessage("UnsubscribeConfirmation", sub, "", text); err == nil {
		s.enqueue(m, sub, at, false)
	}
	s.eventData(at, "sns.subscription.deleted", sub.TopicARN, map[string]any{"subscription": arn, "endpoint": sub.Endpoint},
		"SNS subscription of %s deleted", sub.Endpoint)
	return nil
}

// certPool is a pool with the SNS certificate, for tests and clients of the listener.
func (id *snsIdentity) certPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(id.certPEM)
	return p
}
