// CloudWatch and SNS, as cloudsim plays them: every instance has two status-check alarms
// (StatusCheckFailed_System, StatusCheckFailed_Instance; Maximum over 1-minute periods, ALARM
// at ≥ 1 for 2 of 2 datapoints, by default), evaluated at every period's end against what
// DescribeInstanceStatus reports; each change to ALARM or OK is published to the SNS topic as
// CloudWatch's alarm JSON, and SNS delivers it, signed, to the topic's confirmed HTTP/HTTPS
// subscriptions (sns.go).

package cloudsim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AlarmConfig is how the status-check alarms evaluate.
type AlarmConfig struct {
	Period            time.Duration // default 1 minute
	EvaluationPeriods int           // default 2
	DatapointsToAlarm int           // default 2
}

func (c AlarmConfig) withDefaults() AlarmConfig {
	if c.Period <= 0 {
		c.Period = time.Minute
	}
	if c.EvaluationPeriods <= 0 {
		c.EvaluationPeriods = 2
	}
	if c.DatapointsToAlarm <= 0 || c.DatapointsToAlarm > c.EvaluationPeriods {
		c.DatapointsToAlarm = c.EvaluationPeriods
	}
	return c
}

// The alarms' metrics and states.
const (
	MetricStatusSystem   = "StatusCheckFailed_System"
	MetricStatusInstance = "StatusCheckFailed_Instance"
	AlarmOK              = "OK"
	AlarmAlarm           = "ALARM"
	AlarmInsufficient    = "INSUFFICIENT_DATA"
)

// noData is a period without a datapoint: the instance was not running.
const noData = -1.0

// alarm is one status-check alarm of one instance.
type alarm struct {
	Name       string    `json:"name"`
	InstanceID string    `json:"instance_id"`
	Metric     string    `json:"metric"`
	State      string    `json:"state"`
	StateSince time.Time `json:"state_since"`
	Created    time.Time `json:"created"`
	// PeriodEnd is the end of the period being collected; PeriodMax its datapoint so far
	// (Maximum), Value the metric at the last settle point.
	PeriodEnd time.Time   `json:"period_end"`
	PeriodMax float64     `json:"period_max"`
	Value     float64     `json:"value"`
	History   []datapoint `json:"history,omitempty"` // the last EvaluationPeriods, oldest first
}

type datapoint struct {
	At    time.Time `json:"at"` // the period's start
	Value float64   `json:"value"`
}

// AlarmName is the name of an instance's status-check alarm, as the EC2 console names them.
func AlarmName(instanceID, metric string) string { return "awsec2-" + instanceID + "-" + metric }

// statusMetric is the metric of an instance at time at: 1 failed, 0 passed, noData while it
// is not running or its checks are still initializing.
func (s *Sim) statusMetric(in *instance, metric string, at time.Time) float64 {
	system, inst := s.instanceChecks(in, at)
	check := system
	if metric == MetricStatusInstance {
		check = inst
	}
	switch check.Status {
	case "impaired":
		return 1
	case "ok":
		return 0
	}
	return noData
}

// evaluateAlarms brings every instance's alarms to time at: each period that ended is a
// datapoint and an evaluation, then the metric is sampled. The state between settle points
// is constant, so a period's Maximum is exact. Callers hold s.mu.
func (s *Sim) evaluateAlarms(at time.Time) {
	cfg := s.cfg.Alarms.withDefaults()
	for _, id := range sortedKeys(s.st.Instances) {
		in := s.st.Instances[id]
		for _, metric := range []string{MetricStatusSystem, MetricStatusInstance} {
			key := id + "/" + metric
			a := s.st.Alarms[key]
			if a == nil {
				v := s.statusMetric(in, metric, at)
				a = &alarm{Name: AlarmName(id, metric), InstanceID: id, Metric: metric, State: AlarmInsufficient, StateSince: at,
					Created: at, PeriodEnd: at.Truncate(cfg.Period).Add(cfg.Period), PeriodMax: v, Value: v}
				s.st.Alarms[key] = a
				s.markDirty()
				continue
			}
			for !a.PeriodEnd.After(at) {
				a.History = append(a.History, datapoint{At: a.PeriodEnd.Add(-cfg.Period), Value: a.PeriodMax})
				if len(a.History) > cfg.EvaluationPeriods {
					a.History = a.History[len(a.History)-cfg.EvaluationPeriods:]
				}
				s.evaluateAlarm(a, in, a.PeriodEnd, cfg)
				a.PeriodEnd = a.PeriodEnd.Add(cfg.Period)
				a.PeriodMax = a.Value
				s.markDirty()
			}
			if v := s.statusMetric(in, metric, at); v != a.Value || v > a.PeriodMax {
				a.Value, a.PeriodMax = v, max(a.PeriodMax, v)
				s.markDirty()
			}
		}
	}
	for key, a := range s.st.Alarms {
		if s.st.Instances[a.InstanceID] == nil {
			delete(s.st.Alarms, key) // the instance is gone, and its alarms with it
		}
	}
}

// evaluateAlarm decides the alarm's state at the end of a period (TreatMissingData missing):
// no datapoint in the range is INSUFFICIENT_DATA; at least DatapointsToAlarm breaching is
// ALARM; all present and too few breaching is OK; otherwise (some missing) the state stays.
func (s *Sim) evaluateAlarm(a *alarm, in *instance, at time.Time, cfg AlarmConfig) {
	present, breaching := 0, 0
	for _, dp := range a.History {
		if dp.Value != noData {
			present++
			if dp.Value >= 1 {
				breaching++
			}
		}
	}
	next := a.State
	switch {
	case present == 0:
		next = AlarmInsufficient
	case breaching >= cfg.DatapointsToAlarm:
		next = AlarmAlarm
	case present == cfg.EvaluationPeriods && len(a.History) == cfg.EvaluationPeriods:
		next = AlarmOK
	}
	if next == a.State {
		return
	}
	old := a.State
	a.State, a.StateSince = next, at
	reason := alarmReason(a, next, cfg)
	s.eventData(at, "cloudwatch.alarm."+strings.ToLower(strings.ReplaceAll(next, "_", "-")), a.InstanceID,
		map[string]any{"alarm": a.Name, "instance": a.InstanceID, "metric": a.Metric, "old": old, "new": next},
		"alarm %s %s → %s: %s", a.Name, old, next, reason)
	if next == AlarmInsufficient {
		return // the alarms have no INSUFFICIENT_DATA actions
	}
	s.publishAlarm(a, in, old, reason, at, cfg)
}

// alarmReason is CloudWatch's NewStateReason for a threshold alarm.
func alarmReason(a *alarm, state string, cfg AlarmConfig) string {
	var pts []string
	counted := 0
	for i := len(a.History) - 1; i >= 0; i-- { // newest first, as CloudWatch lists them
		dp := a.History[i]
		if dp.Value == noData || (state == AlarmAlarm) != (dp.Value >= 1) {
			continue
		}
		counted++
		pts = append(pts, fmt.Sprintf("%.1f (%s)", dp.Value, dp.At.UTC().Format("02/01/06 15:04:05")))
	}
	if state == AlarmAlarm {
		return fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] was greater than or equal to the threshold (1.0) (minimum %d datapoints for OK -> ALARM transition).",
			counted, cfg.EvaluationPeriods, strings.Join(pts, ", "), cfg.DatapointsToAlarm)
	}
	return fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] was not greater than or equal to the threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition).",
		counted, cfg.EvaluationPeriods, strings.Join(pts, ", "))
}

// regionNames are the names CloudWatch's messages give regions.
var regionNames = map[string]string{
	"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
	"us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)", "eu-west-2": "EU (London)", "eu-central-1": "EU (Frankfurt)",
	"ap-southeast-1": "Asia Pacific (Singapore)", "ap-southeast-2": "Asia Pacific (Sydney)", "ap-northeast-1": "Asia Pacific (Tokyo)",
}

func regionName(region string) string {
	if n, ok := regionNames[region]; ok {
		return n
	}
	return region
}

// cloudWatchMessage is the alarm JSON CloudWatch publishes to SNS, its fields in its order.
type cloudWatchMessage struct {
	AlarmName                          string   `json:"AlarmName"`
	AlarmDescription                   string   `json:"AlarmDescription"`
	AWSAccountID                       string   `json:"AWSAccountId"`
	AlarmConfigurationUpdatedTimestamp string   `json:"AlarmConfigurationUpdatedTimestamp"`
	NewStateValue                      string   `json:"NewStateValue"`
	NewStateReason                     string   `json:"NewStateReason"`
	StateChangeTime                    string   `json:"StateChangeTime"`
	Region                             string   `json:"Region"`
	AlarmArn                           string   `json:"AlarmArn"`
	OldStateValue                      string   `json:"OldStateValue"`
	OKActions                          []string `json:"OKActions"`
	AlarmActions                       []string `json:"AlarmActions"`
	InsufficientDataActions            []string `json:"InsufficientDataActions"`
	Trigger                            struct {
		MetricName    string  `json:"MetricName"`
		Namespace     string  `json:"Namespace"`
		StatisticType string  `json:"StatisticType"`
		Statistic     string  `json:"Statistic"`
		Unit          *string `json:"Unit"`
		Dimensions    []struct {
			Value string `json:"value"`
			Name  string `json:"name"`
		} `json:"Dimensions"`
		Period                           int     `json:"Period"`
		EvaluationPeriods                int     `json:"EvaluationPeriods"`
		DatapointsToAlarm                int     `json:"DatapointsToAlarm"`
		ComparisonOperator               string  `json:"ComparisonOperator"`
		Threshold                        float64 `json:"Threshold"`
		TreatMissingData                 string  `json:"TreatMissingData"`
		EvaluateLowSampleCountPercentile string  `json:"EvaluateLowSampleCountPercentile"`
	} `json:"Trigger"`
}

// cloudWatchTime is how CloudWatch writes StateChangeTime: 2014-07-15T09:22:00.000+0000.
const cloudWatchTime = "2006-01-02T15:04:05.000-0700"

// publishAlarm publishes an alarm's state change to the topic.
func (s *Sim) publishAlarm(a *alarm, in *instance, old, reason string, at time.Time, cfg AlarmConfig) {
	topic := s.snsTopic()
	m := cloudWatchMessage{
		AlarmName: a.Name, AWSAccountID: ownerID, NewStateValue: a.State, NewStateReason: reason, OldStateValue: old,
		AlarmDescription:                   fmt.Sprintf("%s of %s (%s) in %s", a.Metric, tagOr(in, "Name", in.ID), in.ID, in.Zone),
		AlarmConfigurationUpdatedTimestamp: a.Created.UTC().Format(cloudWatchTime),
		StateChangeTime:                    at.UTC().Format(cloudWatchTime),
		Region:                             regionName(s.cfg.Region),
		AlarmArn:                           fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", s.cfg.Region, ownerID, a.Name),
		OKActions:                          []string{topic}, AlarmActions: []string{topic}, InsufficientDataActions: []string{},
	}
	t := &m.Trigger
	t.MetricName, t.Namespace, t.StatisticType, t.Statistic = a.Metric, "AWS/EC2", "Statistic", "MAXIMUM"
	t.Dimensions = append(t.Dimensions, struct {
		Value string `json:"value"`
		Name  string `json:"name"`
	}{in.ID, "InstanceId"})
	t.Period, t.EvaluationPeriods, t.DatapointsToAlarm = int(cfg.Period.Seconds()), cfg.EvaluationPeriods, cfg.DatapointsToAlarm
	t.ComparisonOperator, t.Threshold = "GreaterThanOrEqualToThreshold", 1
	t.TreatMissingData = "- TreatMissingData:                    missing" // sic, as CloudWatch writes it
	body, _ := json.Marshal(m)
	subject := fmt.Sprintf("%s: %q in %s", a.State, a.Name, regionName(s.cfg.Region))
	if len(subject) > 100 {
		subject = subject[:100]
	}
	s.publish(topic, subject, string(body), at)
}

func tagOr(in *instance, key, def string) string {
	if v, ok := in.Tags.get(key); ok {
		return v
	}
	return def
}
