package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
)

// TestCloudTokensScopedByOperation runs RunInstance on the Temporal dev server in two runs of
// one business key, failover/live-file, one after the other: a second failover of the server
// (a later incident) gets a new instance, not the first run's back. Two runs that pass one
// explicit Scope (DemoFleet's way) share the instance.
func TestCloudTokensScopedByOperation(t *testing.T) {
	_, endpoint := cloudsim.NewTestServer(t, cloudsim.Config{})
	cloud := newTestCloud(t, endpoint)
	tc, queue := temporalWorker(t, worker.Options{}, cloud)
	launch := map[string]any{"Step": "launch replacement", "ImageID": testImage, "InstanceType": "m5.large", "Zone": zoneA}
	instanceOf := func(input map[string]any) string {
		out, err := runActivity(t, tc, queue, "failover/live-file", "RunInstance", input)
		require.NoError(t, err)
		return out["ID"].(string)
	}
	first, second := instanceOf(launch), instanceOf(launch)
	require.NotEqual(t, first, second, "a later run of failover/live-file must not get the first run's instance back")

	launch["Scope"] = "incident-7"
	third, fourth := instanceOf(launch), instanceOf(launch)
	require.Equal(t, third, fourth, "one explicit scope across runs is one operation: one instance")
	require.NotContains(t, []string{first, second}, third)
}

// loseFirstReply makes the first attempt of one activity type lose its reply after the activity
// did its work, as a worker that dies between the cloud's answer and Temporal's does: Temporal
// then retries it.
type loseFirstReply struct {
	interceptor.WorkerInterceptorBase
	activity string
}

func (l *loseFirstReply) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &loseFirstReplyInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, activity: l.activity}
}

type loseFirstReplyInbound struct {
	interceptor.ActivityInboundInterceptorBase
	activity string
}

func (i *loseFirstReplyInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	out, err := i.Next.ExecuteActivity(ctx, in)
	if info := activity.GetInfo(ctx); err == nil && info.ActivityType.Name == i.activity && info.Attempt == 1 {
		return nil, errors.New("reply lost: the worker died after the call")
	}
	return out, err
}

// TestCloudSnapshotLostReplyTakesOne runs CreateSnapshot and CopySnapshot on the Temporal dev
// server with the first attempt's reply lost, against a cloudsim running in real time, where a
// new snapshot shows in DescribeSnapshots listings only seconds after it was taken (EC2's
// eventual consistency). It proves the retry, which finds nothing by tag at first, keeps
// looking and returns the snapshot the first attempt took instead of taking a second one.
func TestCloudSnapshotLostReplyTakesOne(t *testing.T) {
	sim, endpoint := cloudsim.NewTestServer(t, cloudsim.Config{Speed: 1})
	clients, err := NewClients(context.Background(), config.AWS{Region: homeRegion, Endpoint: endpoint})
	require.NoError(t, err)
	cloud := NewCloud(clients)
	env, _ := activityEnv(t, cloud)
	vol := call[Volume](t, env, cloud.CreateVolume, CreateVolumeInput{Step: "logs", Zone: zoneA, SizeGiB: 1})
	sim.Advance(time.Minute) // created
	source := call[Snapshot](t, env, cloud.CreateSnapshot, CreateSnapshotInput{Step: "source", VolumeID: vol.ID})
	sim.Advance(10 * time.Minute) // completed, and listed

	tests := []struct {
		activity string
		input    map[string]any
	}{
		{"CreateSnapshot", map[string]any{"Step": "snapshot logs", "VolumeID": vol.ID}},
		{"CopySnapshot", map[string]any{"Step": "copy logs", "SourceSnapshotID": source.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.activity, func(t *testing.T) {
			tc, queue := temporalWorker(t, worker.Options{Interceptors: []interceptor.WorkerInterceptor{&loseFirstReply{activity: tt.activity}}}, cloud)
			out, err := runActivity(t, tc, queue, "snapshot-"+tt.activity, tt.activity, tt.input)
			require.NoError(t, err)
			sim.Advance(time.Minute) // every snapshot taken is listed now
			found, err := clients.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{
				Filters: []types.Filter{{Name: aws.String("tag:" + TagStep), Values: []string{tt.input["Step"].(string)}}},
			})
			require.NoError(t, err)
			require.Len(t, found.Snapshots, 1, "the lost reply's retry must not take a second snapshot")
			require.Equal(t, aws.ToString(found.Snapshots[0].SnapshotId), out["ID"])
		})
	}
}
