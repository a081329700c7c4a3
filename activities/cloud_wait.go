package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// Waiting for the cloud: the shared part of the wait activities, which poll with the SDK's
// waiters, heartbeat every poll and tell a state the resource cannot leave from a timeout.

// DefaultPollInterval is how often the wait activities poll when the input does not say;
// cloudsim runs pass a shorter one scaled by its speed factor.
const DefaultPollInterval = 15 * time.Second

// WaitProgress is the heartbeat of the wait activities.
type WaitProgress struct {
	ResourceID string
	State      string
	Polls      int
}

// waitBounds returns the poll interval and the longest wait: the input's timeout, else what
// is left of the activity's deadline.
func waitBounds(ctx context.Context, interval, timeout time.Duration) (time.Duration, time.Duration) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	if timeout <= 0 {
		timeout = 24 * time.Hour
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
	}
	if timeout <= interval {
		// The SDK waiter needs room for at least one delay.
		timeout = interval + time.Millisecond
	}
	return interval, timeout
}

// notFoundGrace is how many first polls may answer NotFound before a wait gives up: EC2 is
// eventually consistent, and a resource just created may not be visible to Describe yet.
const notFoundGrace = 3

// heartbeatRetryable wraps an SDK waiter's Retryable: it heartbeats every poll with the
// response, polls again when a resource is not visible yet (the first notFoundGrace polls),
// and turns the waiter's terminal failure state (the resource reached a state from which the
// wanted one is unreachable) into a non-retryable WaitFailed error.
func heartbeatRetryable[I, O any](
	orig func(context.Context, *I, *O, error) (bool, error),
	progress func(*O),
	failed string,
) func(context.Context, *I, *O, error) (bool, error) {
	polls := 0
	return func(ctx context.Context, in *I, out *O, err error) (bool, error) {
		polls++
		if err == nil {
			progress(out)
		} else if strings.HasSuffix(awsCode(err), ".NotFound") && polls <= notFoundGrace {
			return true, nil
		}
		retry, rerr := orig(ctx, in, out, err)
		if rerr != nil && err == nil {
			return false, temporal.NewNonRetryableApplicationError(failed, ErrWaitFailed, nil)
		}
		return retry, rerr
	}
}

// waitError maps what an SDK waiter returned: our typed errors as they are, AWS errors
// through cloudError, "exceeded max wait time" as a retryable error.
func waitError(op string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return cloudError(op, err)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// resourcePolls is a wait activity's polling of one resource with an SDK waiter: how often and
// for how long, and the heartbeat of every poll (progress, for heartbeatRetryable).
type resourcePolls[O any] struct {
	interval, maxWait time.Duration
	progress          func(*O)
}

// pollResource bounds a wait (waitBounds) and heartbeats WaitProgress at every poll, with the
// resource's state as state reads it from the poll's answer.
func pollResource[O any](ctx context.Context, id string, interval, timeout time.Duration, state func(*O) string) resourcePolls[O] {
	interval, maxWait := waitBounds(ctx, interval, timeout)
	polls := 0
	return resourcePolls[O]{interval: interval, maxWait: maxWait, progress: func(out *O) {
		polls++
		p := WaitProgress{ResourceID: id, Polls: polls}
		if out != nil {
			p.State = state(out)
		}
		activity.RecordHeartbeat(ctx, p)
	}}
}
