package alarms

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/workflows"
)

// CloudWatchAlarm is the JSON document CloudWatch publishes to an SNS topic when an alarm
// changes state (the SNS Notification's Message). Fields we do not use are left out.
type CloudWatchAlarm struct {
	AlarmName       string `json:"AlarmName"`
	AlarmArn        string `json:"AlarmArn"`
	NewStateValue   string `json:"NewStateValue"` // ALARM, OK, INSUFFICIENT_DATA
	OldStateValue   string `json:"OldStateValue"`
	NewStateReason  string `json:"NewStateReason"`
	StateChangeTime string `json:"StateChangeTime"` // 2014-07-15T09:02:00.000+0000
	Region          string `json:"Region"`
	Trigger         struct {
		MetricName        string `json:"MetricName"`
		Namespace         string `json:"Namespace"`
		EvaluationPeriods int    `json:"EvaluationPeriods"`
		Period            int    `json:"Period"`
		Dimensions        []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"Dimensions"`
	} `json:"Trigger"`
}

// CloudWatch alarm states.
const (
	CloudWatchAlarmState = "ALARM"
	CloudWatchOK         = "OK"
	CloudWatchNoData     = "INSUFFICIENT_DATA"
)

// StatusCheckMetrics are the EC2 metrics whose alarms mean a server has failed: the system
// check (the hardware or the host under the instance), the instance check (its OS, its boot
// disk), and both together.
var StatusCheckMetrics = []string{"StatusCheckFailed_System", "StatusCheckFailed_Instance", "StatusCheckFailed"}

// cloudWatchTimeLayout is StateChangeTime's format: milliseconds and a zone offset without colon.
const cloudWatchTimeLayout = "2006-01-02T15:04:05.000-0700"

// AlarmFromSNS reads the CloudWatch alarm in an SNS Notification and returns it as an Alarm.
// An alarm we do not act on (another metric or namespace, no InstanceId dimension, the state
// INSUFFICIENT_DATA) gives ok false and the reason; a Message that is not a CloudWatch alarm
// is EINVALID.
func AlarmFromSNS(m *SNSMessage) (alarm anyops.Alarm, ok bool, reason string, err error) {
	var cw CloudWatchAlarm
	if err := json.Unmarshal([]byte(m.Message), &cw); err != nil {
		return alarm, false, "", anyops.Errorf(anyops.EINVALID, "SNS message %s: Message is not a CloudWatch alarm: %s", m.MessageID, workflows.DescribeJSONError(err))
	}
	if cw.AlarmName == "" || cw.NewStateValue == "" {
		return alarm, false, "", anyops.Errorf(anyops.EINVALID, "SNS message %s: Message is not a CloudWatch alarm (no AlarmName or NewStateValue)", m.MessageID)
	}
	alarm = anyops.Alarm{
		Source: anyops.AlarmSNS, DeliveryID: m.MessageID, Name: cw.AlarmName, Check: cw.Trigger.MetricName,
		Reason: cw.NewStateReason, At: m.SentAt(),
	}
	if t, err := time.Parse(cloudWatchTimeLayout, cw.StateChangeTime); err == nil {
		alarm.At = t
	} else if t, err := time.Parse(time.RFC3339Nano, cw.StateChangeTime); err == nil {
		alarm.At = t
	}
	switch cw.NewStateValue {
	case CloudWatchAlarmState:
		alarm.State = anyops.AlarmFiring
	case CloudWatchOK:
		alarm.State = anyops.AlarmResolved
	case CloudWatchNoData:
		return alarm, false, fmt.Sprintf("alarm %s has no data (%s): not a fault", cw.AlarmName, CloudWatchNoData), nil
	default:
		return alarm, false, "", anyops.Errorf(anyops.EINVALID, "SNS message %s: NewStateValue %q is not ALARM, OK or INSUFFICIENT_DATA", m.MessageID, cw.NewStateValue)
	}
	if cw.Trigger.Namespace != "AWS/EC2" || !slices.Contains(StatusCheckMetrics, cw.Trigger.MetricName) {
		return alarm, false, fmt.Sprintf("alarm %s watches %s %s, not an EC2 status check (%s)", cw.AlarmName,
			cw.Trigger.Namespace, cw.Trigger.MetricName, strings.Join(StatusCheckMetrics, ", ")), nil
	}
	for _, d := range cw.Trigger.Dimensions {
		if d.Name == "InstanceId" && d.Value != "" {
			alarm.InstanceID = d.Value
		}
	}
	if alarm.InstanceID == "" {
		return alarm, false, fmt.Sprintf("alarm %s has no InstanceId dimension: it is not about one server", cw.AlarmName), nil
	}
	return alarm, true, "", nil
}
