package activities

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops/config"
)

// TestCloudNewClients: the clients come from config alone, bad config is refused with a
// message naming the setting, and the https path works with AWS_CA_BUNDLE set (where
// config.WithHTTPClient would fail).
func TestCloudNewClients(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	cases := []struct {
		name    string
		cfg     config.AWS
		errPart string // "" means success
	}{
		{"cloudsim over plain http, no keys", config.AWS{Region: "us-east-1", Endpoint: "http://127.0.0.1:4566"}, ""},
		{"real AWS with static keys", config.AWS{Region: "eu-west-1", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}, ""},
		{"https endpoint with the CA bundle", config.AWS{Region: "us-east-1", Endpoint: "https://ec2.example.test"}, ""},
		{"no region", config.AWS{Endpoint: "http://127.0.0.1:4566"}, "region is required"},
		{"key without secret", config.AWS{Region: "us-east-1", AccessKeyID: "AKID"}, "must be given together"},
		{"endpoint not a URL", config.AWS{Region: "us-east-1", Endpoint: "127.0.0.1:4566"}, "not an http(s) URL"},
		{"endpoint of another scheme", config.AWS{Region: "us-east-1", Endpoint: "ftp://x"}, "not an http(s) URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClients(context.Background(), tc.cfg)
			if tc.errPart != "" {
				require.ErrorContains(t, err, tc.errPart)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.cfg.Region, c.EC2.Options().Region)
			require.Equal(t, tc.cfg.Region, c.SSM.Options().Region)
			if tc.cfg.Endpoint != "" {
				require.Equal(t, tc.cfg.Endpoint, aws.ToString(c.EC2.Options().BaseEndpoint))
				require.Equal(t, tc.cfg.Endpoint, aws.ToString(c.SSM.Options().BaseEndpoint))
				require.Equal(t, tc.cfg.Endpoint, aws.ToString(c.Route53.Options().BaseEndpoint))
			} else {
				require.Nil(t, c.EC2.Options().BaseEndpoint, "real AWS resolves its own endpoints")
			}
			if tc.cfg.AccessKeyID != "" {
				creds, err := c.EC2.Options().Credentials.Retrieve(context.Background())
				require.NoError(t, err)
				require.Equal(t, tc.cfg.AccessKeyID, creds.AccessKeyID)
			}

			west := c.EC2For("us-west-2")
			require.Equal(t, "us-west-2", west.Options().Region)
			require.Equal(t, c.EC2.Options().BaseEndpoint, west.Options().BaseEndpoint, "another region, same endpoint")
			require.Same(t, west, c.EC2For("us-west-2"), "one client per region")
			require.Same(t, c.EC2, c.EC2For(""), "empty is the home region")
			require.Same(t, c.EC2, c.EC2For(tc.cfg.Region))
		})
	}
}

// TestCloudErrorMapping: AWS error codes become typed application errors; what no retry
// fixes is non-retryable, throttling and busy states stay retryable, unknown codes and
// transport errors pass through retryable.
func TestCloudErrorMapping(t *testing.T) {
	cases := []struct {
		code         string
		typ          string // "" means not an application error
		nonRetryable bool
	}{
		{"InvalidVolume.NotFound", ErrVolumeNotFound, true},
		{"InvalidInstanceID.NotFound", ErrInstanceNotFound, true},
		{"InvalidSnapshot.NotFound", ErrSnapshotNotFound, true},
		{"IdempotentParameterMismatch", ErrIdempotentParameterMismatch, true},
		{"InvalidParameterValue", ErrInvalidParameter, true},
		{"IncorrectState", ErrIncorrectState, false},
		{"IncorrectInstanceState", ErrIncorrectState, false},
		{"RequestLimitExceeded", ErrRequestLimitExceeded, false},
		{"ThrottlingException", ErrRequestLimitExceeded, false},
		{"InvalidInstanceId", ErrHostUnreachable, false},
		{"InternalError", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			cause := &smithy.GenericAPIError{Code: tc.code, Message: "from the cloud"}
			err := cloudError("Op", fmt.Errorf("operation error: %w", cause))
			var appErr *temporal.ApplicationError
			if tc.typ == "" {
				require.False(t, errors.As(err, &appErr), "unknown codes are not typed: %v", err)
				require.ErrorAs(t, err, new(*smithy.GenericAPIError))
				return
			}
			require.ErrorAs(t, err, &appErr)
			require.Equal(t, tc.typ, appErr.Type())
			require.Equal(t, tc.nonRetryable, appErr.NonRetryable())
			require.Contains(t, appErr.Message(), "Op: "+tc.code+": from the cloud")
		})
	}
	require.NoError(t, cloudError("Op", nil))
	require.ErrorIs(t, cloudError("Op", context.Canceled), context.Canceled, "cancellation is not dressed up")
}

// TestCloudClientToken: the token is a pure function of workflow id, scope and step, fits
// EC2's 64 characters, differs when any of the three does (a second failover of one server is
// another scope), and the separators keep ("a", "bc") and ("ab", "c") apart.
func TestCloudClientToken(t *testing.T) {
	a := clientToken("failover/file-1", "run-1", "create volume home0")
	require.Equal(t, a, clientToken("failover/file-1", "run-1", "create volume home0"))
	require.Len(t, a, 64)
	require.NotEqual(t, a, clientToken("failover/file-1", "run-1", "create volume logs"))
	require.NotEqual(t, a, clientToken("failover/file-2", "run-1", "create volume home0"))
	require.NotEqual(t, a, clientToken("failover/file-1", "run-2", "create volume home0"))
	require.NotEqual(t, clientToken("w", "a", "bc"), clientToken("w", "ab", "c"))
	require.NotEqual(t, clientToken("a", "bc", "s"), clientToken("ab", "c", "s"))
}

// TestCloudHeartbeatRetryable: the waiter wrapper heartbeats each successful poll, and turns
// the SDK's terminal failure state into the non-retryable WaitFailed error while API errors
// pass through for cloudError.
func TestCloudHeartbeatRetryable(t *testing.T) {
	type in struct{}
	type out struct{ state string }
	sdk := func(_ context.Context, _ *in, o *out, err error) (bool, error) {
		switch {
		case err != nil:
			return false, err
		case o.state == "error":
			return false, fmt.Errorf("waiter state transitioned to Failure")
		case o.state == "completed":
			return false, nil
		}
		return true, nil
	}
	var polls []string
	wrapped := heartbeatRetryable(sdk, func(o *out) { polls = append(polls, o.state) }, "it failed")
	ctx := context.Background()

	retry, err := wrapped(ctx, &in{}, &out{"pending"}, nil)
	require.True(t, retry)
	require.NoError(t, err)
	retry, err = wrapped(ctx, &in{}, &out{"completed"}, nil)
	require.False(t, retry)
	require.NoError(t, err)
	_, err = wrapped(ctx, &in{}, &out{"error"}, nil)
	requireAppError(t, err, ErrWaitFailed, true)
	apiErr := &smithy.GenericAPIError{Code: "InvalidSnapshot.NotFound"}
	_, err = wrapped(ctx, &in{}, nil, apiErr)
	require.ErrorIs(t, err, apiErr)
	require.Equal(t, []string{"pending", "completed", "error"}, polls, "one heartbeat per answered poll")

	// Just created and not visible yet: the first polls try again, later ones give up.
	fresh := heartbeatRetryable(sdk, func(*out) {}, "it failed")
	for i := range notFoundGrace {
		retry, err := fresh(ctx, &in{}, nil, apiErr)
		require.NoError(t, err, "poll %d", i+1)
		require.True(t, retry)
	}
	_, err = fresh(ctx, &in{}, nil, apiErr)
	require.ErrorIs(t, err, apiErr, "still not found after the grace polls")
}

// TestCloudParseProgress reads EC2's progress strings.
func TestCloudParseProgress(t *testing.T) {
	for in, want := range map[string]int{"": 0, "0%": 0, "42%": 42, "100%": 100, " 7% ": 7, "abc": 0, "-5%": 0, "250%": 100} {
		require.Equal(t, want, parseProgress(in), "parseProgress(%q)", in)
	}
}
