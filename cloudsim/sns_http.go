// SNS on the wire: deliveries POSTed to the subscribed endpoints in simulated time, the HTTPS
// listener (the signing certificate, and the Query actions ConfirmSubscription, Subscribe,
// Unsubscribe a SubscribeURL or an operator calls), and the /_sim/sns control endpoints.

package cloudsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/anyops/anyops"
)

// snsLoopInterval is how often (real time) the deliverer looks for what is due; it also
// settles the world, so alarms fire on time when nothing else asks.
const snsLoopInterval = 100 * time.Millisecond

// snsLoop delivers what is due until the Sim closes.
func (s *Sim) snsLoop() {
	defer s.stopped.Done()
	client := &http.Client{Timeout: snsAttemptTimout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tick := time.NewTicker(snsLoopInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.deliverDue(client)
		}
	}
}

// deliverDue sends every delivery that is due, one after another, outside the lock.
func (s *Sim) deliverDue(client *http.Client) {
	now := s.begin()
	var due []*Delivery
	for _, d := range s.st.Deliveries {
		if d.Status == "pending" && !d.Due.After(now) {
			due = append(due, d)
		}
	}
	copies := make([]Delivery, len(due))
	for i, d := range due {
		copies[i] = *d
	}
	s.mu.Unlock()
	for i, d := range due {
		status, err := s.post(client, copies[i])
		at := s.begin()
		s.delivered(d, status, err, at)
		s.mu.Unlock()
	}
}

// post sends one delivery as SNS does: the JSON body as text/plain with SNS's headers.
func (s *Sim) post(client *http.Client, d Delivery) (int, error) {
	req, err := http.NewRequest(http.MethodPost, d.Endpoint, bytes.NewReader([]byte(d.Body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	req.Header.Set("User-Agent", "Amazon Simple Notification Service Agent")
	req.Header.Set("x-amz-sns-message-type", d.Type)
	req.Header.Set("x-amz-sns-message-id", d.MessageID)
	req.Header.Set("x-amz-sns-topic-arn", s.snsTopic())
	if d.Type != "SubscriptionConfirmation" {
		req.Header.Set("x-amz-sns-subscription-arn", d.Subscription)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// delivered records an attempt: 2xx delivered; 5xx, 429 and transport errors retried with the
// delivery policy; other answers failed for good. Callers hold s.mu.
func (s *Sim) delivered(d *Delivery, status int, err error, at time.Time) {
	d.Attempts++
	data := map[string]any{"message_id": d.MessageID, "type": d.Type, "endpoint": d.Endpoint, "attempt": d.Attempts, "status": status}
	switch {
	case err == nil && status >= 200 && status < 300:
		d.Status = "delivered"
		s.eventData(at, "sns.delivered", d.Subscription, data, "SNS %s %s delivered to %s (attempt %d, HTTP %d)", d.Type, d.MessageID, d.Endpoint, d.Attempts, status)
	case (err != nil || status >= 500 || status == http.StatusTooManyRequests) && d.Attempts <= snsRetries:
		d.Due = at.Add(snsRetryDelay)
		d.LastError = describeAttempt(status, err)
		s.eventData(at, "sns.delivery-retry", d.Subscription, data, "SNS %s %s to %s: %s; retrying in %s", d.Type, d.MessageID, d.Endpoint, d.LastError, snsRetryDelay)
	default:
		d.Status, d.LastError = "failed", describeAttempt(status, err)
		s.eventData(at, "sns.delivery-failed", d.Subscription, data, "SNS %s %s to %s failed for good: %s", d.Type, d.MessageID, d.Endpoint, d.LastError)
	}
	s.markDirty()
}

func describeAttempt(status int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("HTTP %d", status)
}

// SNSDeliveries lists the recent deliveries, oldest first.
func (s *Sim) SNSDeliveries() []Delivery {
	s.begin()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.st.Deliveries))
	for i, d := range s.st.Deliveries {
		out[i] = *d
	}
	return out
}

// Redeliver delivers a message once more, now, as SNS's at-least-once delivery may; false when
// no delivery of that message id is known.
func (s *Sim) Redeliver(messageID string) bool {
	now := s.begin()
	defer s.mu.Unlock()
	for i := len(s.st.Deliveries) - 1; i >= 0; i-- {
		if d := s.st.Deliveries[i]; d.MessageID == messageID {
			c := *d
			c.Due, c.Attempts, c.Status, c.LastError, c.Duplicate = now, 0, "pending", "", true
			s.st.Deliveries = append(s.st.Deliveries, &c)
			s.markDirty()
			return true
		}
	}
	return false
}

// SNSSubscribe subscribes an endpoint to the topic, as SNS's Subscribe does: a new or pending
// subscription is sent a SubscriptionConfirmation.
func (s *Sim) SNSSubscribe(endpoint string) (string, error) {
	if s.sns == nil {
		return "", errors.New("cloudsim: SNS is off (no signing certificate and key)")
	}
	now := s.begin()
	defer s.mu.Unlock()
	u, _ := url.Parse(endpoint)
	protocol := "https"
	if u != nil && u.Scheme == "http" {
		protocol = "http"
	}
	sub, err := s.subscribe(s.snsTopic(), protocol, endpoint, now)
	if err != nil {
		return "", err
	}
	return sub.ARN, nil
}

// SNSHandler serves the HTTPS listener: the signing certificate at its path, and SNS's Query
// actions.
func (s *Sim) SNSHandler() http.Handler {
	mux := http.NewServeMux()
	if s.sns != nil {
		mux.HandleFunc("GET "+s.sns.path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/x-x509-ca-cert")
			_, _ = w.Write(s.sns.certPEM)
		})
	}
	mux.HandleFunc("/", s.serveSNSQuery)
	return recoverer(s.log, mux)
}

// ServeSNS serves the HTTPS listener on ln (TLS with the signing certificate) until ctx ends.
func (s *Sim) ServeSNS(ctx context.Context, ln net.Listener) error {
	if s.sns == nil {
		return errors.New("cloudsim: SNS is off (no signing certificate and key)")
	}
	srv := &http.Server{Handler: s.SNSHandler(), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{s.sns.tls}, MinVersion: tls.VersionTLS12}}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

const snsNamespace = "http://sns.amazonaws.com/doc/2010-03-31/"

type xSNSError struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// isSNSAction says whether a Query action is one of SNS's that cloudsim answers.
func isSNSAction(action string) bool {
	return action == "ConfirmSubscription" || action == "Subscribe" || action == "Unsubscribe"
}

// serveSNSQuery answers SNS's Query actions, by GET (a SubscribeURL) or POST.
func (s *Sim) serveSNSQuery(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxQueryBody)
	if err := r.ParseForm(); err != nil {
		writeSNSXML(w, http.StatusBadRequest, &xSNSError{Xmlns: snsNamespace, Type: "Sender", Code: "MalformedQueryString", Message: err.Error(), RequestID: uuid.NewString()})
		return
	}
	s.answerSNS(w, r.Form)
}

// answerSNS answers one SNS Query request.
func (s *Sim) answerSNS(w http.ResponseWriter, q url.Values) {
	reqID := uuid.NewString()
	fail := func(e *apiError) {
		writeSNSXML(w, e.Status, &xSNSError{Xmlns: snsNamespace, Type: "Sender", Code: e.Code, Message: e.Message, RequestID: reqID})
	}
	if s.sns == nil {
		fail(&apiError{Code: "InvalidAction", Message: "cloudsim's SNS is off", Status: 400})
		return
	}
	action := q.Get("Action")
	now := s.begin()
	var arn string
	var aerr *apiError
	switch action {
	case "ConfirmSubscription":
		var sub *subscription
		if sub, aerr = s.confirm(q.Get("TopicArn"), q.Get("Token"), now); sub != nil {
			arn = sub.ARN
		}
	case "Subscribe":
		switch {
		case q.Get("TopicArn") != s.snsTopic():
			aerr = &apiError{Code: "NotFound", Message: "Topic does not exist", Status: 404}
		case q.Get("Protocol") != "http" && q.Get("Protocol") != "https":
			aerr = &apiError{Code: "InvalidParameter", Message: "Invalid parameter: Protocol (cloudsim delivers to http and https endpoints)", Status: 400}
		default:
			sub, err := s.subscribe(q.Get("TopicArn"), q.Get("Protocol"), q.Get("Endpoint"), now)
			if err != nil {
				aerr = &apiError{Code: "InvalidParameter", Message: err.Error(), Status: 400}
			} else if arn = sub.ARN; !sub.Confirmed && q.Get("ReturnSubscriptionArn") != "true" {
				arn = "pending confirmation"
			}
		}
	case "Unsubscribe":
		arn = q.Get("SubscriptionArn")
		aerr = s.unsubscribe(arn, now)
	default:
		aerr = &apiError{Code: "InvalidAction", Message: fmt.Sprintf("cloudsim's SNS does not simulate the action %q", action), Status: 400}
	}
	s.mu.Unlock()
	if aerr != nil {
		fail(aerr)
		return
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	fmt.Fprintf(&buf, `<%sResponse xmlns="%s"><%sResult>`, action, snsNamespace, action)
	if action != "Unsubscribe" {
		buf.WriteString("<SubscriptionArn>")
		_ = xml.EscapeText(&buf, []byte(arn))
		buf.WriteString("</SubscriptionArn>")
	}
	fmt.Fprintf(&buf, `</%sResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`, action, reqID, action)
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(buf.Bytes())
}

func writeSNSXML(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(v)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// handleSNS is GET /_sim/sns: the topic, the subscriptions and the recent deliveries.
func (s *Sim) handleSNS(w http.ResponseWriter, _ *http.Request) {
	s.begin()
	subs := []subscription{}
	for _, arn := range sortedKeys(s.st.Subscriptions) {
		subs = append(subs, *s.st.Subscriptions[arn])
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"enabled": s.sns != nil, "topic": s.snsTopic(), "subscriptions": subs, "deliveries": s.SNSDeliveries()})
}

// handleRedeliver is POST /_sim/sns/redeliver {"message_id"}.
func (s *Sim) handleRedeliver(w http.ResponseWriter, r *http.Request) {
	var in struct {
		MessageID string `json:"message_id"`
	}
	if err := readJSON(r, &in); err != nil || in.MessageID == "" {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, `the body must be {"message_id": "..."}`)
		return
	}
	if !s.Redeliver(in.MessageID) {
		writeSimError(w, http.StatusNotFound, anyops.ENOTFOUND, "no delivery of message "+in.MessageID)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
