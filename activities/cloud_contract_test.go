package activities

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
)

// cloudBackend is one implementation of EC2 the contract tests run the same activity code
// against.
type cloudBackend struct {
	name string
	// start returns the endpoint of a fresh, empty cloud for this test.
	start func(t *testing.T) string
	// pollInterval is how often the wait activities poll it.
	pollInterval time.Duration
	// simulatesTime: snapshots take (simulated) time, so progress is seen rising.
	simulatesTime bool
	// honorsClientToken: a second call with the same ClientToken returns the first resource.
	// moto ignores ClientToken, so the assertion is made only where it holds.
	honorsClientToken bool
}

// cloudBackends lists the backends. moto is an EC2 implementation nobody here wrote: it
// proves wire compatibility. cloudsim adds time, idempotency and faults.
func cloudBackends() []cloudBackend {
	return append([]cloudBackend{{
		name:         "moto",
		start:        func(t *testing.T) string { return testenv.Moto(t) },
		pollInterval: 20 * time.Millisecond,
	}}, cloudsimBackends()...)
}

const (
	homeRegion  = "us-east-1"
	otherRegion = "us-west-2"
	zoneA       = "us-east-1a"
	zoneB       = "us-east-1b"
	testImage   = "ami-12c6146b" // one of moto's default images
)

func newTestCloud(t *testing.T, endpoint string) *Cloud {
	t.Helper()
	clients, err := NewClients(context.Background(), config.AWS{Region: homeRegion, Endpoint: endpoint})
	require.NoError(t, err)
	return NewCloud(clients)
}

// heartbeats records every heartbeat an activity records, through a worker interceptor:
// the test environment's heartbeat listener only sees throttled ones.
type heartbeats struct {
	interceptor.WorkerInterceptorBase
	mu      sync.Mutex
	details []any
}

func (h *heartbeats) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &heartbeatInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, h: h}
}

type heartbeatInbound struct {
	interceptor.ActivityInboundInterceptorBase
	h *heartbeats
}

func (i *heartbeatInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	return i.Next.Init(&heartbeatOutbound{ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{Next: outbound}, h: i.h})
}

type heartbeatOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	h *heartbeats
}

func (o *heartbeatOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	o.h.mu.Lock()
	if len(details) > 0 {
		o.h.details = append(o.h.details, details[0])
	}
	o.h.mu.Unlock()
	o.Next.RecordHeartbeat(ctx, details...)
}

// snapshotProgress returns the progress percentages WaitSnapshot heartbeated, in order.
func (h *heartbeats) snapshotProgress(id string) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []int
	for _, d := range h.details {
		if p, ok := d.(SnapshotProgress); ok && p.SnapshotID == id {
			out = append(out, p.Progress)
		}
	}
	return out
}

// activityEnv returns a Temporal activity test environment running the cloud activities,
// so that activity.GetInfo and heartbeats work as on a worker.
func activityEnv(t *testing.T, acts ...any) (*testsuite.TestActivityEnvironment, *heartbeats) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	// Expected failures would fill the output; the assertions say what went wrong.
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := suite.NewTestActivityEnvironment()
	hb := &heartbeats{}
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{hb}})
	env.SetTestTimeout(2 * time.Minute)
	for _, a := range acts {
		env.RegisterActivity(a)
	}
	return env, hb
}

// call runs activity fn with input in env and decodes its result.
func call[Out any](t *testing.T, env *testsuite.TestActivityEnvironment, fn, input any) Out {
	t.Helper()
	out, err := callErr[Out](env, fn, input)
	require.NoError(t, err)
	return out
}

func callErr[Out any](env *testsuite.TestActivityEnvironment, fn, input any) (Out, error) {
	var out Out
	val, err := env.ExecuteActivity(fn, input)
	if err != nil {
		return out, err
	}
	return out, val.Get(&out)
}

// requireAppError asserts err is an application error of type typ, and whether it is
// retryable.
func requireAppError(t *testing.T, err error, typ string, nonRetryable bool) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.Truef(t, errors.As(err, &appErr), "want application error %s, got %v", typ, err)
	require.Equal(t, typ, appErr.Type(), "error: %v", err)
	require.Equal(t, nonRetryable, appErr.NonRetryable(), "non-retryable of %v", err)
}

// TestCloudContractVolumeLifecycle runs one sequence through the activity code on every
// backend: launch an instance, create a volume, attach it, snapshot it and wait until the
// snapshot completes, restore the snapshot into a volume in another zone, copy the
// snapshot to another region and wait for the copy. It proves the activities speak EC2 as
// an independent implementation understands it, and that retried calls do not duplicate.
func TestCloudContractVolumeLifecycle(t *testing.T) {
	for _, b := range cloudBackends() {
		t.Run(b.name, func(t *testing.T) {
			cloud := newTestCloud(t, b.start(t))
			env, hb := activityEnv(t, cloud)
			poll := b.pollInterval

			inst := call[Instance](t, env, cloud.RunInstance, RunInstanceInput{
				Step: "launch file server", Name: "file-1", ImageID: testImage, InstanceType: "m5.large", Zone: zoneA,
				Tags: map[string]string{"anyops:role": "file"},
			})
			require.NotEmpty(t, inst.ID)
			require.Equal(t, "file-1", inst.Name)
			require.Equal(t, zoneA, inst.Zone)
			running := call[Instance](t, env, cloud.WaitInstanceRunning, WaitInstanceInput{InstanceID: inst.ID, PollInterval: poll})
			require.Equal(t, "running", running.State)

			vol := call[Volume](t, env, cloud.CreateVolume, CreateVolumeInput{
				Step: "create home volume", Name: "home0", Zone: zoneA, SizeGiB: 10,
			})
			require.NotEmpty(t, vol.ID)
			require.Equal(t, zoneA, vol.Zone)
			avail := call[Volume](t, env, cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: vol.ID, PollInterval: poll})
			require.Equal(t, "available", avail.State)
			require.Equal(t, "home0", avail.Name)
			require.Equal(t, "create home volume", avail.Tags[TagStep])

			att := call[Attachment](t, env, cloud.AttachVolume, AttachVolumeInput{VolumeID: vol.ID, InstanceID: inst.ID, Device: "/dev/sdf"})
			require.Equal(t, inst.ID, att.InstanceID)
			inUse := call[Volume](t, env, cloud.WaitVolumeAttached, WaitVolumeInput{VolumeID: vol.ID, PollInterval: poll})
			require.Equal(t, "in-use", inUse.State)
			// A retried attach finds the attachment it made and succeeds without a second call.
			again := call[Attachment](t, env, cloud.AttachVolume, AttachVolumeInput{VolumeID: vol.ID, InstanceID: inst.ID, Device: "/dev/sdf"})
			require.Equal(t, inst.ID, again.InstanceID)
			require.Equal(t, "/dev/sdf", again.Device)

			snap := call[Snapshot](t, env, cloud.CreateSnapshot, CreateSnapshotInput{Step: "snapshot home0", VolumeID: vol.ID, Name: "home0-snap"})
			require.NotEmpty(t, snap.ID)
			require.Equal(t, vol.ID, snap.Tags[TagSourceVolume])
			// CreateSnapshot has no ClientToken: the retry (an attempt after one that sent the
			// request) finds the first snapshot by its tag, looking again while the listing lags.
			retry, _ := activityEnv(t, cloud)
			retry.SetHeartbeatDetails(SnapshotRequest{Step: "snapshot home0", Sent: true})
			retried := call[Snapshot](t, retry, cloud.CreateSnapshot, CreateSnapshotInput{Step: "snapshot home0", VolumeID: vol.ID, Name: "home0-snap"})
			require.Equal(t, snap.ID, retried.ID, "a retried CreateSnapshot must not take a second snapshot")

			done := call[Snapshot](t, env, cloud.WaitSnapshot, WaitSnapshotInput{SnapshotID: snap.ID, PollInterval: poll})
			require.Equal(t, "completed", done.State)
			require.Equal(t, 100, done.Progress)
			progress := hb.snapshotProgress(snap.ID)
			require.NotEmpty(t, progress, "WaitSnapshot heartbeats its progress")
			t.Logf("%s: snapshot progress seen in heartbeats: %v", b.name, progress)
			for i := 1; i < len(progress); i++ {
				require.GreaterOrEqual(t, progress[i], progress[i-1], "progress never goes backwards: %v", progress)
			}
			if b.simulatesTime {
				require.Less(t, progress[0], 100, "the first poll sees the snapshot in progress: %v", progress)
				require.Greater(t, len(distinct(progress)), 2, "progress rises with simulated time: %v", progress)
			}

			restored := call[Volume](t, env, cloud.CreateVolumeFromSnapshot, CreateVolumeFromSnapshotInput{
				Step: "restore home0 in zone b", Name: "home0-b", SnapshotID: snap.ID, Zone: zoneB,
			})
			require.Equal(t, zoneB, restored.Zone)
			restored = call[Volume](t, env, cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: restored.ID, PollInterval: poll})
			require.Equal(t, snap.ID, restored.SnapshotID)
			require.Equal(t, int32(10), restored.SizeGiB)

			cp := call[Snapshot](t, env, cloud.CopySnapshot, CopySnapshotInput{
				Step: "copy home0 to west", SourceSnapshotID: snap.ID, DestinationRegion: otherRegion,
			})
			require.NotEmpty(t, cp.ID)
			require.Equal(t, otherRegion, cp.Region)
			require.Equal(t, vol.ID, cp.Tags[TagSourceVolume], "the copy remembers which volume it preserves")
			retry, _ = activityEnv(t, cloud)
			retry.SetHeartbeatDetails(SnapshotRequest{Step: "copy home0 to west", Sent: true})
			cpRetried := call[Snapshot](t, retry, cloud.CopySnapshot, CopySnapshotInput{
				Step: "copy home0 to west", SourceSnapshotID: snap.ID, DestinationRegion: otherRegion,
			})
			require.Equal(t, cp.ID, cpRetried.ID, "a retried CopySnapshot must not copy twice")
			cpDone := call[Snapshot](t, env, cloud.WaitSnapshot, WaitSnapshotInput{SnapshotID: cp.ID, Region: otherRegion, PollInterval: poll})
			require.Equal(t, "completed", cpDone.State)

			fleet := call[Fleet](t, env, cloud.DescribeFleet, DescribeFleetInput{Tags: map[string]string{"anyops:role": "file"}})
			require.Len(t, fleet.Instances, 1)
			require.Equal(t, inst.ID, fleet.Instances[0].ID)
			health := call[InstanceHealth](t, env, cloud.InstanceStatus, InstanceRef{InstanceID: inst.ID})
			require.Equal(t, "running", health.State)
		})
	}
}

// TestCloudContractInstanceLifecycle: stop, start and terminate through the activities on
// every backend, each repeated as a retry would, with the waits in between; waiting for
// running on a terminated instance fails for good instead of polling until the timeout.
func TestCloudContractInstanceLifecycle(t *testing.T) {
	for _, b := range cloudBackends() {
		t.Run(b.name, func(t *testing.T) {
			cloud := newTestCloud(t, b.start(t))
			env, _ := activityEnv(t, cloud)
			poll := b.pollInterval
			inst := call[Instance](t, env, cloud.RunInstance, RunInstanceInput{Step: "launch", ImageID: testImage, InstanceType: "t3.micro", Zone: zoneB})
			ref := InstanceRef{InstanceID: inst.ID}
			wait := WaitInstanceInput{InstanceID: inst.ID, PollInterval: poll}
			call[Instance](t, env, cloud.WaitInstanceRunning, wait)

			for range 2 {
				call[InstanceStateChange](t, env, cloud.StopInstance, StopInstanceInput{InstanceID: inst.ID})
			}
			require.Equal(t, "stopped", call[Instance](t, env, cloud.WaitInstanceStopped, wait).State)
			for range 2 {
				call[InstanceStateChange](t, env, cloud.StartInstance, ref)
			}
			require.Equal(t, "running", call[Instance](t, env, cloud.WaitInstanceRunning, wait).State)
			for range 2 {
				call[InstanceStateChange](t, env, cloud.TerminateInstance, ref)
			}
			_, err := callErr[Instance](env, cloud.WaitInstanceRunning, wait)
			requireAppError(t, err, ErrWaitFailed, true)
		})
	}
}

// distinct returns the distinct values of a sorted-or-not slice, in first-seen order.
func distinct(xs []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// TestCloudContractSafety checks the typed errors and interlocks on every backend: a volume
// attached elsewhere, deleting a volume with no verified copy, an override without a
// reason, and the idempotent detach and delete. The deletion interlock verifies the copy the
// input names: completed snapshots that exist are not enough, nor one taken before writes
// stopped, of another volume, missing or pending; a completed one taken after is.
func TestCloudContractSafety(t *testing.T) {
	for _, b := range cloudBackends() {
		t.Run(b.name, func(t *testing.T) {
			cloud := newTestCloud(t, b.start(t))
			env, _ := activityEnv(t, cloud)
			poll := b.pollInterval

			var ids []string
			for _, step := range []string{"launch a", "launch b"} {
				inst := call[Instance](t, env, cloud.RunInstance, RunInstanceInput{Step: step, ImageID: testImage, InstanceType: "t3.micro", Zone: zoneA})
				call[Instance](t, env, cloud.WaitInstanceRunning, WaitInstanceInput{InstanceID: inst.ID, PollInterval: poll})
				ids = append(ids, inst.ID)
			}
			vol := call[Volume](t, env, cloud.CreateVolume, CreateVolumeInput{Step: "logs volume", Zone: zoneA, SizeGiB: 5})
			call[Volume](t, env, cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: vol.ID, PollInterval: poll})
			call[Attachment](t, env, cloud.AttachVolume, AttachVolumeInput{VolumeID: vol.ID, InstanceID: ids[0], Device: "/dev/sdg"})
			call[Volume](t, env, cloud.WaitVolumeAttached, WaitVolumeInput{VolumeID: vol.ID, PollInterval: poll})

			cases := []struct {
				name         string
				fn           any
				input        any
				typ          string
				nonRetryable bool
			}{
				{"attach to a second instance", cloud.AttachVolume, AttachVolumeInput{VolumeID: vol.ID, InstanceID: ids[1], Device: "/dev/sdg"}, ErrVolumeAttachedElsewhere, true},
				{"attach at another device", cloud.AttachVolume, AttachVolumeInput{VolumeID: vol.ID, InstanceID: ids[0], Device: "/dev/sdh"}, ErrVolumeAttachedElsewhere, true},
				{"detach from the wrong instance", cloud.DetachVolume, DetachVolumeInput{VolumeID: vol.ID, InstanceID: ids[1]}, ErrVolumeAttachedElsewhere, true},
				{"delete without a verified copy", cloud.DeleteVolume, DeleteVolumeInput{VolumeID: vol.ID}, ErrNoVerifiedCopy, true},
				{"override without a reason", cloud.DeleteVolume, DeleteVolumeInput{VolumeID: vol.ID, Override: &Override{By: "ops"}}, ErrInvalidInput, true},
				{"volume that does not exist", cloud.AttachVolume, AttachVolumeInput{VolumeID: "vol-0123456789abcdef0", InstanceID: ids[0], Device: "/dev/sdj"}, ErrVolumeNotFound, true},
				{"instance that does not exist", cloud.InstanceStatus, InstanceRef{InstanceID: "i-0123456789abcdef0"}, ErrInstanceNotFound, true},
				{"snapshot that does not exist", cloud.WaitSnapshot, WaitSnapshotInput{SnapshotID: "snap-0123456789abcdef0", PollInterval: poll}, ErrSnapshotNotFound, true},
				{"no step, so no idempotency token", cloud.CreateVolume, CreateVolumeInput{Zone: zoneA, SizeGiB: 1}, ErrInvalidInput, true},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					_, err := callErr[any](env, tc.fn, tc.input)
					requireAppError(t, err, tc.typ, tc.nonRetryable)
				})
			}

			// The volume is still there and attached: none of the refused calls changed it.
			still := call[Volume](t, env, cloud.WaitVolumeAttached, WaitVolumeInput{VolumeID: vol.ID, PollInterval: poll})
			require.Equal(t, ids[0], still.Attachments[0].InstanceID)

			call[Attachment](t, env, cloud.DetachVolume, DetachVolumeInput{VolumeID: vol.ID, InstanceID: ids[0]})
			call[Volume](t, env, cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: vol.ID, PollInterval: poll})
			// Detaching a detached volume is success: a retry after the first detach worked.
			det := call[Attachment](t, env, cloud.DetachVolume, DetachVolumeInput{VolumeID: vol.ID})
			require.Equal(t, "detached", det.State)

			del := call[DeleteVolumeOutput](t, env, cloud.DeleteVolume, DeleteVolumeInput{VolumeID: vol.ID, Override: &Override{By: "ops", Reason: "scratch volume of a test"}})
			require.True(t, del.Deleted)
			require.True(t, del.Overridden)
			gone := call[DeleteVolumeOutput](t, env, cloud.DeleteVolume, DeleteVolumeInput{VolumeID: vol.ID})
			require.False(t, gone.Deleted, "deleting a deleted volume is success: a retry")

			// The interlock verifies the copy the input names, and only that one.
			kept := call[Volume](t, env, cloud.CreateVolume, CreateVolumeInput{Step: "dropbox volume", Zone: zoneA, SizeGiB: 5})
			call[Volume](t, env, cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: kept.ID, PollInterval: poll})
			other := call[Volume](t, env, cloud.CreateVolume, CreateVolumeInput{Step: "scratch volume", Zone: zoneA, SizeGiB: 1})
			old := call[Snapshot](t, env, cloud.CreateSnapshot, CreateSnapshotInput{Step: "snapshot dropbox", VolumeID: kept.ID})
			old = call[Snapshot](t, env, cloud.WaitSnapshot, WaitSnapshotInput{SnapshotID: old.ID, PollInterval: poll})
			// Writes went on after the old snapshot; they stopped later (the cloud's clock).
			stopped := old.StartTime.Add(time.Second)
			fresh := call[Snapshot](t, env, cloud.CreateSnapshot, CreateSnapshotInput{Step: "snapshot dropbox after writes stopped", VolumeID: kept.ID})
			refusals := []struct {
				name  string
				input DeleteVolumeInput
			}{
				{"completed snapshots exist but none is named", DeleteVolumeInput{VolumeID: kept.ID}},
				{"a completed snapshot taken before writes stopped", DeleteVolumeInput{VolumeID: kept.ID, Copy: &VerifiedCopy{SnapshotID: old.ID, WritesStoppedAt: stopped}}},
				{"a snapshot of another volume", DeleteVolumeInput{VolumeID: other.ID, Copy: &VerifiedCopy{SnapshotID: old.ID, WritesStoppedAt: old.StartTime}}},
				{"a snapshot that does not exist", DeleteVolumeInput{VolumeID: kept.ID, Copy: &VerifiedCopy{SnapshotID: "snap-0123456789abcdef0", WritesStoppedAt: stopped}}},
			}
			if b.simulatesTime {
				// A first snapshot of 200 GiB takes hours of simulated time: still pending.
				big := call[Volume](t, env, cloud.CreateVolume, CreateVolumeInput{Step: "big volume", Zone: zoneA, SizeGiB: 200})
				call[Volume](t, env, cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: big.ID, PollInterval: poll})
				pending := call[Snapshot](t, env, cloud.CreateSnapshot, CreateSnapshotInput{Step: "snapshot big", VolumeID: big.ID})
				refusals = append(refusals, struct {
					name  string
					input DeleteVolumeInput
				}{"a snapshot still pending", DeleteVolumeInput{VolumeID: big.ID, Copy: &VerifiedCopy{SnapshotID: pending.ID, WritesStoppedAt: pending.StartTime}}})
			}
			for _, tc := range refusals {
				t.Run("refuses "+tc.name, func(t *testing.T) {
					_, err := callErr[DeleteVolumeOutput](env, cloud.DeleteVolume, tc.input)
					requireAppError(t, err, ErrNoVerifiedCopy, true)
				})
			}
			_, err := callErr[DeleteVolumeOutput](env, cloud.DeleteVolume, DeleteVolumeInput{VolumeID: kept.ID, Copy: &VerifiedCopy{SnapshotID: old.ID}})
			requireAppError(t, err, ErrInvalidInput, true) // a snapshot copy without the time writes stopped

			fresh = call[Snapshot](t, env, cloud.WaitSnapshot, WaitSnapshotInput{SnapshotID: fresh.ID, PollInterval: poll})
			del = call[DeleteVolumeOutput](t, env, cloud.DeleteVolume, DeleteVolumeInput{VolumeID: kept.ID,
				Copy: &VerifiedCopy{SnapshotID: fresh.ID, WritesStoppedAt: fresh.StartTime}})
			require.True(t, del.Deleted)
			require.Equal(t, fresh.ID, del.VerifiedCopy)
		})
	}
}

// TestCloudContractClientToken: RunInstances and CreateVolume called with different steps
// create different resources on every backend; called twice with one ClientToken (same
// workflow id, scope and step) they create one resource, and one token with other parameters
// is a non-retryable mismatch. moto ignores ClientToken, so that second half is skipped there,
// with the reason in the test report.
func TestCloudContractClientToken(t *testing.T) {
	for _, b := range cloudBackends() {
		t.Run(b.name, func(t *testing.T) {
			cloud := newTestCloud(t, b.start(t))
			env, _ := activityEnv(t, cloud)
			volIn := CreateVolumeInput{Step: "create logs", Zone: zoneA, SizeGiB: 3}

			t.Run("another step is another resource", func(t *testing.T) {
				v1 := call[Volume](t, env, cloud.CreateVolume, volIn)
				other := volIn
				other.Step = "create logs again"
				v2 := call[Volume](t, env, cloud.CreateVolume, other)
				require.NotEqual(t, v1.ID, v2.ID, "another step is another token: a new volume")
			})

			t.Run("one token is one resource", func(t *testing.T) {
				if !b.honorsClientToken {
					t.Skipf("%s ignores ClientToken: every call creates a resource, so one token cannot be shown to make one", b.name)
				}
				runIn := RunInstanceInput{Step: "launch web", ImageID: testImage, InstanceType: "t3.micro", Zone: zoneA}
				i1 := call[Instance](t, env, cloud.RunInstance, runIn)
				i2 := call[Instance](t, env, cloud.RunInstance, runIn)
				require.Equal(t, i1.ID, i2.ID, "one ClientToken, one instance")
				v1 := call[Volume](t, env, cloud.CreateVolume, volIn)
				v2 := call[Volume](t, env, cloud.CreateVolume, volIn)
				require.Equal(t, v1.ID, v2.ID, "one ClientToken, one volume")

				fleet := call[Fleet](t, env, cloud.DescribeFleet, DescribeFleetInput{})
				require.Len(t, fleet.Instances, 1)
				var ours []string // the instance's root volume is the cloud's, not ours
				for _, v := range fleet.Volumes {
					if v.Tags[TagStep] == volIn.Step {
						ours = append(ours, v.ID)
					}
				}
				require.Equal(t, []string{v1.ID}, ours)

				// The same token with different parameters is a mistake no retry fixes.
				mismatch := volIn
				mismatch.SizeGiB = 4
				_, err := callErr[Volume](env, cloud.CreateVolume, mismatch)
				requireAppError(t, err, ErrIdempotentParameterMismatch, true)
			})
		})
	}
}

// testEnv is an activity test environment with its heartbeat recorder.
type testEnv struct {
	env *testsuite.TestActivityEnvironment
	hb  *heartbeats
}

// applicationDetails decodes the details of the application error in err into v.
func applicationDetails(err error, v any) error {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return err
	}
	return appErr.Details(v)
}

// TestCloudContractDNS: the file service's name is a record of a private hosted zone of the
// servers' VPC. The same activity code on moto and cloudsim: EnsurePrivateZone creates the zone
// once (a retry, which Route 53 refuses as HostedZoneAlreadyExists, finds the first one by its
// caller reference); switching the name to the server that takes over is an UPSERT, harmless
// to repeat, waited for until INSYNC; GetRecord reads it; DeleteZone takes the zone and its
// records away and is harmless to repeat.
func TestCloudContractDNS(t *testing.T) {
	for _, b := range cloudBackends() {
		t.Run(b.name, func(t *testing.T) {
			cloud := newTestCloud(t, b.start(t))
			env, _ := activityEnv(t, cloud)
			ctx := context.Background()
			run, err := cloud.Clients.EC2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(testImage), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
			require.NoError(t, err)
			vpc := aws.ToString(run.Instances[0].VpcId)
			require.NotEmpty(t, vpc, "an instance reports its VPC")

			zin := EnsurePrivateZoneInput{Step: "zone", Name: "Cluster-1.internal", VPCID: vpc}
			zone := call[HostedZone](t, env, cloud.EnsurePrivateZone, zin)
			require.True(t, strings.HasPrefix(zone.ID, "/hostedzone/"), zone.ID)
			require.Equal(t, "cluster-1.internal.", zone.Name)
			t.Run("one caller reference, one zone", func(t *testing.T) {
				if !b.honorsClientToken {
					t.Skip("moto does not refuse a second zone with the same CallerReference (HostedZoneAlreadyExists), so a retry makes another zone there")
				}
				again := call[HostedZone](t, env, cloud.EnsurePrivateZone, zin) // a retry
				require.Equal(t, zone.ID, again.ID, "a retry finds the zone the first attempt made")
			})
			other := call[HostedZone](t, env, cloud.EnsurePrivateZone, EnsurePrivateZoneInput{Step: "zone-2", Name: "cluster-2.internal.", VPCID: vpc})
			require.NotEqual(t, zone.ID, other.ID, "another step, another zone")

			in := SwitchRecordInput{HostedZoneID: zone.ID, Name: "files.cluster-1.internal.", Values: []string{"10.0.1.20"}}
			call[RecordChange](t, env, cloud.SwitchRecord, in)
			ch := call[RecordChange](t, env, cloud.SwitchRecord, in) // a retry
			require.NotEmpty(t, ch.ChangeID)
			done := call[RecordChange](t, env, cloud.WaitRecordInSync, WaitRecordInput{ChangeID: ch.ChangeID, PollInterval: b.pollInterval})
			require.Equal(t, "INSYNC", done.Status)

			in.Values = []string{"10.0.2.30"} // the backup takes over
			call[RecordChange](t, env, cloud.SwitchRecord, in)
			rec := call[Record](t, env, cloud.GetRecord, RecordInput{HostedZoneID: zone.ID, Name: "files.cluster-1.internal"})
			require.Equal(t, Record{Found: true, Name: "files.cluster-1.internal.", Type: "A", TTL: 60, Values: []string{"10.0.2.30"}}, rec,
				"one record, pointing at the new server")
			missing := call[Record](t, env, cloud.GetRecord, RecordInput{HostedZoneID: zone.ID, Name: "nope.cluster-1.internal."})
			require.False(t, missing.Found)

			_, err = callErr[RecordChange](env, cloud.SwitchRecord, SwitchRecordInput{HostedZoneID: "/hostedzone/NOPE", Name: in.Name, Values: in.Values})
			requireAppError(t, err, ErrInvalidParameter, true)

			_, err = env.ExecuteActivity(cloud.DeleteZone, DeleteZoneInput{HostedZoneID: zone.ID})
			require.NoError(t, err)
			_, err = env.ExecuteActivity(cloud.DeleteZone, DeleteZoneInput{HostedZoneID: zone.ID})
			require.NoError(t, err, "deleting a deleted zone is success")
			_, err = cloud.Clients.Route53.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(zone.ID)})
			require.ErrorContains(t, err, "NoSuchHostedZone")
		})
	}
}
