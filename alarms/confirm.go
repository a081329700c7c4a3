package alarms

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Confirmer confirms SNS subscriptions: for a verified SubscriptionConfirmation it GETs the
// SubscribeURL (which the verifier has allowed), in the background so that the answer to SNS
// does not wait on it, a few at a time, each attempt bounded, with a few retries.
type Confirmer struct {
	client   *http.Client
	log      *slog.Logger
	sem      chan struct{}
	attempts int
	backoff  time.Duration
	// confirmed is told of each subscription confirmed (the API records an audit event).
	confirmed func(ctx context.Context, topicArn, subscriptionArn string)
	wg        sync.WaitGroup
}

// maxConfirming bounds the confirmations under way; a confirmation beyond it is dropped (and
// logged): SNS sends a new one when the subscription is requested again.
const maxConfirming = 4

// NewConfirmer returns a Confirmer that GETs with client and reports each confirmed
// subscription to confirmed (which may be nil).
func NewConfirmer(client *http.Client, log *slog.Logger, confirmed func(ctx context.Context, topicArn, subscriptionArn string)) *Confirmer {
	if log == nil {
		log = slog.Default()
	}
	return &Confirmer{client: client, log: log, sem: make(chan struct{}, maxConfirming), attempts: 3, backoff: time.Second, confirmed: confirmed}
}

// Confirm starts confirming the subscription of m at subscribeURL and returns at once; false
// when too many confirmations are under way and this one was dropped.
func (c *Confirmer) Confirm(m *SNSMessage, subscribeURL string) bool {
	select {
	case c.sem <- struct{}{}:
	default:
		c.log.Warn("SNS subscription confirmation dropped: too many under way", "topic", m.TopicArn, "message_id", m.MessageID)
		return false
	}
	c.wg.Add(1)
	go func() {
		defer func() { <-c.sem; c.wg.Done() }()
		arn, err := c.confirm(subscribeURL)
		if err != nil {
			c.log.Error("SNS subscription not confirmed", "topic", m.TopicArn, "message_id", m.MessageID, "err", err)
			return
		}
		c.log.Info("SNS subscription confirmed", "topic", m.TopicArn, "subscription", arn)
		if c.confirmed != nil {
			c.confirmed(context.Background(), m.TopicArn, arn)
		}
	}()
	return true
}

// Wait waits for the confirmations under way.
func (c *Confirmer) Wait() { c.wg.Wait() }

// confirmSubscriptionResponse is what SNS answers a ConfirmSubscription GET with.
type confirmSubscriptionResponse struct {
	SubscriptionArn string `xml:"ConfirmSubscriptionResult>SubscriptionArn"`
}

func (c *Confirmer) confirm(subscribeURL string) (string, error) {
	var err error
	wait := c.backoff
	for attempt := 1; attempt <= c.attempts; attempt++ {
		if attempt > 1 {
			time.Sleep(wait)
			wait *= 2
		}
		var body []byte
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		body, err = getHTTPS(ctx, c.client, subscribeURL, 64<<10)
		cancel()
		var status *statusError
		if errors.As(err, &status) && status.code >= 400 && status.code < 500 {
			return "", err // refused: asking again changes nothing
		}
		if err != nil {
			continue
		}
		var resp confirmSubscriptionResponse
		if err = xml.Unmarshal(body, &resp); err != nil || resp.SubscriptionArn == "" {
			return "", fmt.Errorf("ConfirmSubscription answered something else than a ConfirmSubscriptionResponse: %q", truncateText(string(body), 200))
		}
		return resp.SubscriptionArn, nil
	}
	return "", fmt.Errorf("after %d attempts: %w", c.attempts, err)
}

// truncateText keeps at most n bytes of s for a log line.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
