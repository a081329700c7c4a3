package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/alarms"
	"github.com/anyops/anyops/inventory"
)

// AlarmDeps configure the alarm endpoints, POST /v1/alarms/sns and /v1/alarms/alertmanager.
// Neither takes an API token: SNS signs its messages (the signature is the authentication),
// and Alertmanager sends a bearer token of its own.
type AlarmDeps struct {
	// SNSTopics are the topic ARNs accepted; none refuses every SNS message.
	SNSTopics []string
	// SNSCertHosts are the hosts signing certificates and SubscribeURLs may be on; none means
	// sns.<region>.amazonaws.com of each topic.
	SNSCertHosts []string
	// SNSMaxAge is how far from now a message's Timestamp may be; zero: one hour.
	SNSMaxAge time.Duration
	// SNSClient fetches signing certificates and confirms subscriptions (alarms.NewHTTPClient:
	// the system's roots plus --sns-signing-ca); nil: the system's roots.
	SNSClient *http.Client
	// AlertmanagerToken is Alertmanager's bearer token; empty switches its endpoint off.
	AlertmanagerToken string
	// TaskQueue overrides the recovery kinds' task queue (tests); empty: the kind's.
	TaskQueue string
	// Speed is a simulated cloud's speed factor the recoveries' timing is scaled by (dev:
	// cloudsim's); 0 or 1: production timing.
	Speed float64
}

// AlarmAnswer is the body of POST /v1/alarms/sns.
type AlarmAnswer struct {
	anyops.AlarmOutcome
}

// AlertmanagerAnswer is the body of POST /v1/alarms/alertmanager: what became of each alert,
// in the webhook's order.
type AlertmanagerAnswer struct {
	Alerts []anyops.AlarmOutcome `json:"alerts"`
}

// alarmService serves the alarm endpoints of one Server.
type alarmService struct {
	server    *Server
	intake    *alarms.Intake
	sns       *alarms.SNSVerifier
	confirmer *alarms.Confirmer
	amDigest  [sha256.Size]byte // of the Alertmanager token
	amOn      bool
	taken     *prometheus.CounterVec
	refused   *prometheus.CounterVec
}

func setupAlarms(s *Server) {
	cfg := s.deps.Alarms
	client := cfg.SNSClient
	if client == nil {
		client, _ = alarms.NewHTTPClient("") // without a CA file it cannot fail
	}
	as := &alarmService{
		server: s,
		intake: &alarms.Intake{Store: s.deps.Store, Temporal: s.deps.Temporal, Logger: s.log.With("component", "alarms"), TaskQueue: cfg.TaskQueue, Speed: cfg.Speed},
		sns: &alarms.SNSVerifier{Topics: cfg.SNSTopics, CertHosts: cfg.SNSCertHosts, MaxAge: cfg.SNSMaxAge,
			Certs: alarms.NewCertCache(client, 0, 0)},
		taken: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "anyops_alarms_total",
			Help: "Alarms taken in, by source and what the intake did: started, joined, noted, ignored."}, []string{"source", "action"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "anyops_alarm_refusals_total",
			Help: "Alarm deliveries refused, by source and HTTP status."}, []string{"source", "status"}),
	}
	s.metrics.registry.MustRegister(as.taken, as.refused)
	as.confirmer = alarms.NewConfirmer(client, s.log.With("component", "alarms"), as.confirmed)
	if cfg.AlertmanagerToken != "" {
		as.amDigest, as.amOn = sha256.Sum256([]byte(cfg.AlertmanagerToken)), true
	}
	s.v1.POST("/alarms/sns", as.postSNS)
	s.v1.POST("/alarms/alertmanager", as.postAlertmanager)
}

// refuse answers a delivery with err, counting it.
func (as *alarmService) refuse(c *gin.Context, source anyops.AlarmSource, err error) {
	status := anyops.HTTPStatus(anyops.ErrorCode(err))
	as.refused.WithLabelValues(string(source), http.StatusText(status)).Inc()
	if status < 500 {
		as.server.log.Warn("alarm refused", "source", source, "client", c.ClientIP(), "status", status, "reason", anyops.ErrorMessage(err))
	}
	WriteError(c, err)
}

// postSNS is the SNS HTTPS subscription endpoint. Every message is verified before anything
// is read from it (signature, topic, age, certificate host: see alarms.SNSVerifier); a
// refusal records nothing. A SubscriptionConfirmation is confirmed in the background; a
// Notification carrying a CloudWatch status-check alarm goes to the intake.
func (as *alarmService) postSNS(c *gin.Context) {
	body, err := ReadBody(c)
	if err != nil {
		as.refuse(c, anyops.AlarmSNS, err)
		return
	}
	m, err := alarms.ParseSNSMessage(body)
	if err != nil {
		as.refuse(c, anyops.AlarmSNS, err)
		return
	}
	// SNS's headers repeat the type and topic; a message whose headers say otherwise is not
	// one SNS sent.
	if h := c.GetHeader("x-amz-sns-message-type"); h != "" && h != m.Type {
		as.refuse(c, anyops.AlarmSNS, anyops.Errorf(anyops.EINVALID, "x-amz-sns-message-type %q does not match the message's Type %q", h, m.Type))
		return
	}
	if h := c.GetHeader("x-amz-sns-topic-arn"); h != "" && h != m.TopicArn {
		as.refuse(c, anyops.AlarmSNS, anyops.Errorf(anyops.EINVALID, "x-amz-sns-topic-arn %q does not match the message's TopicArn", h))
		return
	}
	ctx := c.Request.Context()
	if err := as.sns.Verify(ctx, m); err != nil {
		as.refuse(c, anyops.AlarmSNS, err)
		return
	}
	switch m.Type {
	case alarms.SNSSubscriptionConfirmation:
		subscribe, err := as.sns.AllowedURL(m.SubscribeURL)
		if err != nil {
			as.refuse(c, anyops.AlarmSNS, anyops.Errorf(anyops.EFORBIDDEN, "SubscribeURL: %s", anyops.ErrorMessage(err)))
			return
		}
		if !as.confirmer.Confirm(m, subscribe) {
			as.refuse(c, anyops.AlarmSNS, anyops.Errorf(anyops.EUNAVAILABLE, "too many subscription confirmations under way; SNS may send this one again"))
			return
		}
		c.JSON(http.StatusOK, AlarmAnswer{anyops.AlarmOutcome{Action: anyops.AlarmNoted, Message: "confirming the subscription to " + m.TopicArn}})
	case alarms.SNSUnsubscribeConfirmation:
		as.audit(ctx, "alarms.sns.unsubscribed", m.TopicArn, map[string]any{"message_id": m.MessageID})
		c.JSON(http.StatusOK, AlarmAnswer{anyops.AlarmOutcome{Action: anyops.AlarmNoted, Message: "unsubscribed from " + m.TopicArn + "; not subscribing again"}})
	default:
		alarm, ok, reason, err := alarms.AlarmFromSNS(m)
		if err != nil {
			as.refuse(c, anyops.AlarmSNS, err)
			return
		}
		if !ok {
			as.taken.WithLabelValues(string(anyops.AlarmSNS), string(anyops.AlarmIgnored)).Inc()
			c.JSON(http.StatusOK, AlarmAnswer{anyops.AlarmOutcome{Action: anyops.AlarmIgnored, Message: reason}})
			return
		}
		out, err := as.intake.Raise(ctx, alarm)
		if err != nil {
			as.refuse(c, anyops.AlarmSNS, err)
			return
		}
		as.taken.WithLabelValues(string(anyops.AlarmSNS), string(out.Action)).Inc()
		c.JSON(http.StatusOK, AlarmAnswer{out})
	}
}

// postAlertmanager is the Alertmanager webhook receiver (version 4). Each alert is mapped by
// its labels (alarms.AlarmFromAlert) and goes to the intake; an alert naming no server, or one
// the inventory does not know, is answered as ignored. A failure of the database or Temporal
// is a 5xx for the whole webhook: Alertmanager sends it again, and the intake takes the
// alerts already taken as redeliveries.
func (as *alarmService) postAlertmanager(c *gin.Context) {
	if !as.amOn {
		as.refuse(c, anyops.AlarmAlertmanager, anyops.Errorf(anyops.EUNAVAILABLE, "the Alertmanager endpoint is off: set --alertmanager-token"))
		return
	}
	scheme, presented, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	digest := sha256.Sum256([]byte(strings.TrimSpace(presented)))
	if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(digest[:], as.amDigest[:]) != 1 {
		as.refuse(c, anyops.AlarmAlertmanager, anyops.Errorf(anyops.EUNAUTHORIZED, "missing or wrong Alertmanager bearer token"))
		return
	}
	body, err := ReadBody(c)
	if err != nil {
		as.refuse(c, anyops.AlarmAlertmanager, err)
		return
	}
	w, err := alarms.ParseAlertmanagerWebhook(body)
	if err != nil {
		as.refuse(c, anyops.AlarmAlertmanager, err)
		return
	}
	answer := AlertmanagerAnswer{Alerts: make([]anyops.AlarmOutcome, 0, len(w.Alerts))}
	for _, a := range w.Alerts {
		alarm, ok, reason := alarms.AlarmFromAlert(a)
		var out anyops.AlarmOutcome
		if ok {
			out, err = as.intake.Raise(c.Request.Context(), alarm)
			switch code := anyops.ErrorCode(err); {
			case code == anyops.EINVALID || code == anyops.ENOTFOUND:
				out = anyops.AlarmOutcome{Action: anyops.AlarmIgnored, Server: alarm.Server, Message: anyops.ErrorMessage(err)}
			case err != nil:
				as.refuse(c, anyops.AlarmAlertmanager, err)
				return
			}
		} else {
			out = anyops.AlarmOutcome{Action: anyops.AlarmIgnored, Message: reason}
		}
		as.taken.WithLabelValues(string(anyops.AlarmAlertmanager), string(out.Action)).Inc()
		answer.Alerts = append(answer.Alerts, out)
	}
	c.JSON(http.StatusOK, answer)
}

// confirmed records a confirmed subscription in the audit log.
func (as *alarmService) confirmed(ctx context.Context, topicArn, subscriptionArn string) {
	as.audit(ctx, "alarms.sns.subscribed", topicArn, map[string]any{"subscription_arn": subscriptionArn})
}

func (as *alarmService) audit(ctx context.Context, action, subject string, summary map[string]any) {
	if _, err := as.server.deps.Store.RecordAudit(ctx, inventory.AuditEvent{Actor: "alarm:sns", Action: action, Subject: subject, Summary: summary}); err != nil {
		as.server.log.Error("record audit event", "action", action, "err", err)
	}
}
