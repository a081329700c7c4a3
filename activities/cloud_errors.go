package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
	"go.temporal.io/sdk/temporal"
)

// Error types of the application errors the cloud and host activities return. Workflows
// match them with temporal.ApplicationError.Type(). The non-retryable ones name failures no
// retry can fix; the retryable ones are typed so that a workflow can tell them apart when
// its retry policy gives up.
const (
	// Non-retryable.
	ErrInvalidInput                = "InvalidInput"                // the activity input itself is wrong
	ErrInvalidParameter            = "InvalidParameter"            // the cloud rejected a parameter
	ErrIdempotentParameterMismatch = "IdempotentParameterMismatch" // one ClientToken, different parameters
	ErrInstanceNotFound            = "InstanceNotFound"
	ErrVolumeNotFound              = "VolumeNotFound"
	ErrSnapshotNotFound            = "SnapshotNotFound"
	ErrVolumeAttachedElsewhere     = "VolumeAttachedElsewhere"  // attached to another instance or device
	ErrNoVerifiedCopy              = "NoVerifiedCopy"           // the "never lose a volume" interlock
	ErrSnapshotFailed              = "SnapshotFailed"           // the snapshot went to state error
	ErrWaitFailed                  = "WaitFailed"               // the resource reached a state it cannot leave for the wanted one
	ErrCommandNotFound             = "CommandNotFound"          // exit 127 on the host
	ErrUnexpectedOutput            = "UnexpectedOutput"         // a host command printed what we cannot parse
	ErrModificationRateExceeded    = "ModificationRateExceeded" // the volume was modified as often as AWS allows in 24 h

	// Retryable.
	ErrIncorrectState       = "IncorrectState"       // the resource is busy changing state
	ErrRequestLimitExceeded = "RequestLimitExceeded" // the API throttled us
	ErrCommandFailed        = "CommandFailed"        // a host command exited non-zero
	ErrHostUnreachable      = "HostUnreachable"      // SSM cannot reach the host (agent down, host failed)
)

// awsCodeTypes maps AWS error codes to our error types and whether a retry can help.
var awsCodeTypes = map[string]struct {
	typ       string
	retryable bool
}{
	"InvalidInstanceID.NotFound":          {ErrInstanceNotFound, false},
	"InvalidInstanceID.Malformed":         {ErrInstanceNotFound, false},
	"InvalidVolume.NotFound":              {ErrVolumeNotFound, false},
	"InvalidVolumeID.Malformed":           {ErrVolumeNotFound, false},
	"InvalidSnapshot.NotFound":            {ErrSnapshotNotFound, false},
	"NoSuchHostedZone":                    {ErrInvalidParameter, false},
	"InvalidChangeBatch":                  {ErrInvalidParameter, false},
	"InvalidInput":                        {ErrInvalidParameter, false},
	"PriorRequestNotComplete":             {ErrIncorrectState, true},
	"NoSuchChange":                        {ErrInvalidParameter, false},
	"InvalidVPCId":                        {ErrInvalidParameter, false},
	"InvalidDomainName":                   {ErrInvalidParameter, false},
	"ConflictingDomainExists":             {ErrInvalidParameter, false},
	"HostedZoneNotEmpty":                  {ErrIncorrectState, true},
	"InvalidSnapshotID.Malformed":         {ErrSnapshotNotFound, false},
	"IdempotentParameterMismatch":         {ErrIdempotentParameterMismatch, false},
	"InvalidParameterValue":               {ErrInvalidParameter, false},
	"InvalidParameterCombination":         {ErrInvalidParameter, false},
	"InvalidParameter":                    {ErrInvalidParameter, false},
	"MissingParameter":                    {ErrInvalidParameter, false},
	"InvalidAMIID.NotFound":               {ErrInvalidParameter, false},
	"InvalidAMIID.Malformed":              {ErrInvalidParameter, false},
	"InvalidAvailabilityZone":             {ErrInvalidParameter, false},
	"InvalidZone.NotFound":                {ErrInvalidParameter, false},
	"IncorrectState":                      {ErrIncorrectState, true},
	"IncorrectInstanceState":              {ErrIncorrectState, true},
	"VolumeInUse":                         {ErrIncorrectState, true},
	"RequestLimitExceeded":                {ErrRequestLimitExceeded, true},
	"Throttling":                          {ErrRequestLimitExceeded, true},
	"ThrottlingException":                 {ErrRequestLimitExceeded, true},
	"InvalidInstanceId":                   {ErrHostUnreachable, true},
	"InsufficientInstanceCapacity":        {ErrIncorrectState, true},
	"InvalidInstanceID":                   {ErrInstanceNotFound, false},
	"InvalidVolume.ZoneMismatch":          {ErrInvalidParameter, false},
	"InvalidParameterDependency":          {ErrInvalidParameter, false},
	"UnsupportedOperation":                {ErrInvalidParameter, false},
	"VolumeModificationRateExceeded":      {ErrModificationRateExceeded, false},
	"IncorrectModificationState":          {ErrIncorrectState, true},
	"InvalidAttachment.NotFound":          {ErrVolumeNotFound, false},
	"InvalidSnapshot.InUse":               {ErrIncorrectState, true},
	"ConcurrentSnapshotLimitExceeded":     {ErrRequestLimitExceeded, true},
	"SnapshotCreationPerVolumeRateExceed": {ErrRequestLimitExceeded, true},
}

// awsCode returns the AWS error code in err's chain, or "".
func awsCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// cloudError turns an AWS SDK error from op into what the activity returns: a typed
// application error for the codes we know (non-retryable where no retry can fix it), the
// context's error when the activity was cancelled, else the error as is (retryable).
func cloudError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", op, err)
	}
	t, ok := awsCodeTypes[apiErr.ErrorCode()]
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	// The cause carries the request id and status; the message stays short for the UI.
	msg := fmt.Sprintf("%s: %s: %s", op, apiErr.ErrorCode(), apiErr.ErrorMessage())
	if t.retryable {
		return temporal.NewApplicationErrorWithCause(msg, t.typ, err)
	}
	return temporal.NewNonRetryableApplicationError(msg, t.typ, err)
}

// invalidInput is the non-retryable error for an activity input that can never succeed.
func invalidInput(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrInvalidInput, nil)
}
