package activities

import (
	"context"

	"github.com/anyops/anyops"
)

// AlarmIntake takes an alarm in: package alarms's Intake, the one every source shares. The
// worker wires it in; this package cannot import it (the intake starts workflows, whose
// package imports this one).
type AlarmIntake interface {
	Raise(ctx context.Context, a anyops.Alarm) (anyops.AlarmOutcome, error)
}

// Alarms holds the activity through which workflows raise alarms: the NFSWatch probe's.
// Workflows refer to it through a nil *Alarms; the worker registers one with the intake.
type Alarms struct {
	Intake AlarmIntake
}

// RaiseAlarm hands an alarm to the intake: the same path as an SNS or Alertmanager alarm.
// A retry after a lost reply carries the same DeliveryID, so the intake records it as a
// redelivery and starts nothing a second time.
func (a *Alarms) RaiseAlarm(ctx context.Context, alarm anyops.Alarm) (anyops.AlarmOutcome, error) {
	out, err := a.Intake.Raise(ctx, alarm)
	return out, classify(err)
}
