package alarms

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/workflows"
)

// AlertmanagerWebhook is the body Prometheus Alertmanager POSTs to a webhook receiver
// (webhook_config), version 4 of its format.
type AlertmanagerWebhook struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"` // firing or resolved: of the group
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of a webhook.
type AlertmanagerAlert struct {
	Status       string            `json:"status"` // firing or resolved: of this alert
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Labels an alert names its server with, in the order they are tried (the label contract of
// the README): server is the inventory's name, instance_id EC2's id, and instance
// Prometheus's target, host[:port], whose host is a server name or an instance id.
const (
	LabelServer     = "server"
	LabelInstanceID = "instance_id"
	LabelInstance   = "instance"
)

// maxAlerts bounds the alerts of one webhook (Alertmanager's max_alerts is unbounded by default;
// a group this large is a routing mistake, not one fault).
const maxAlerts = 1000

// ParseAlertmanagerWebhook decodes and checks a webhook: version "4", statuses firing or
// resolved, at most maxAlerts alerts, each with labels. Fields Alertmanager may add later are
// allowed. Errors are EINVALID.
func ParseAlertmanagerWebhook(body []byte) (*AlertmanagerWebhook, error) {
	var w AlertmanagerWebhook
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return nil, anyops.Errorf(anyops.EINVALID, "Alertmanager webhook: %s", workflows.DescribeJSONError(err))
	}
	if dec.More() {
		return nil, anyops.Errorf(anyops.EINVALID, "Alertmanager webhook: unexpected data after the JSON object")
	}
	if w.Version != "4" {
		return nil, anyops.Errorf(anyops.EINVALID, "Alertmanager webhook: version %q, want \"4\"", w.Version)
	}
	if err := alertStatus("status", w.Status); err != nil {
		return nil, err
	}
	if len(w.Alerts) > maxAlerts {
		return nil, anyops.Errorf(anyops.EINVALID, "Alertmanager webhook: %d alerts, at most %d are taken", len(w.Alerts), maxAlerts)
	}
	for i, a := range w.Alerts {
		if err := alertStatus(fmt.Sprintf("alerts[%d].status", i), a.Status); err != nil {
			return nil, err
		}
		if len(a.Labels) == 0 {
			return nil, anyops.Errorf(anyops.EINVALID, "Alertmanager webhook: alerts[%d] has no labels", i)
		}
	}
	return &w, nil
}

func alertStatus(field, s string) error {
	if s != "firing" && s != "resolved" {
		return anyops.Errorf(anyops.EINVALID, "Alertmanager webhook: %s %q is not firing or resolved", field, s)
	}
	return nil
}

// AlarmFromAlert maps one alert to an Alarm by its labels (LabelServer, LabelInstanceID,
// LabelInstance, in that order); ok false with the reason when no label names a server.
func AlarmFromAlert(a AlertmanagerAlert) (alarm anyops.Alarm, ok bool, reason string) {
	alarm = anyops.Alarm{
		Source: anyops.AlarmAlertmanager, Name: a.Labels["alertname"], Check: a.Annotations["summary"],
		Reason: a.Annotations["description"], At: a.StartsAt, State: anyops.AlarmFiring,
	}
	if alarm.Name == "" {
		alarm.Name = "alert"
	}
	if a.Status == "resolved" {
		alarm.State, alarm.At = anyops.AlarmResolved, a.EndsAt
	}
	fingerprint := a.Fingerprint
	if fingerprint == "" {
		fingerprint = labelsFingerprint(a.Labels)
	}
	// One alert keeps its fingerprint and start across notifications: with the status, that
	// names a delivery, and a repeat notification of a firing alert is its redelivery.
	alarm.DeliveryID = fingerprint + "@" + a.StartsAt.UTC().Format(time.RFC3339Nano) + "/" + a.Status
	switch {
	case a.Labels[LabelServer] != "":
		alarm.Server = a.Labels[LabelServer]
	case a.Labels[LabelInstanceID] != "":
		alarm.InstanceID = a.Labels[LabelInstanceID]
	case a.Labels[LabelInstance] != "":
		host := a.Labels[LabelInstance]
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if strings.HasPrefix(host, "i-") {
			alarm.InstanceID = host
		} else {
			alarm.Server = host
		}
	default:
		return alarm, false, fmt.Sprintf("alert %s has none of the labels %s, %s, %s: it names no server", alarm.Name, LabelServer, LabelInstanceID, LabelInstance)
	}
	return alarm, true, ""
}

// labelsFingerprint stands in for Alertmanager's fingerprint when an alert lacks one: a hash
// of its sorted labels, stable across notifications.
func labelsFingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
