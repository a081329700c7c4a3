package activities

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/anyops/anyops/cloudsim"
)

// simCloud is the cloud and host activities on a fresh cloudsim, with the Sim for faults.
type simCloud struct {
	sim   *cloudsim.Sim
	cloud *Cloud
	hosts *Hosts
	e     *testEnv
}

func newSimCloud(t *testing.T) simCloud {
	t.Helper()
	sim, endpoint := cloudsim.NewTestServer(t, cloudsim.Config{})
	cloud, hosts, e := hostsOn(t, endpoint)
	return simCloud{sim: sim, cloud: cloud, hosts: hosts, e: e}
}

const simPoll = 20 * time.Millisecond

func (s simCloud) launch(t *testing.T, step string) string {
	t.Helper()
	return s.launchAs(t, step, "")
}

// launchAs launches a running m5.large (a Nitro type) named step, with the role tag unless
// role is "".
func (s simCloud) launchAs(t *testing.T, step, role string) string {
	t.Helper()
	return s.launchType(t, step, "m5.large", role).ID
}

// launchType launches a running instance of the type named step, with the role tag unless
// role is "".
func (s simCloud) launchType(t *testing.T, step, instanceType, role string) Instance {
	t.Helper()
	in := RunInstanceInput{Step: step, Name: step, ImageID: testImage, InstanceType: instanceType, Zone: zoneA}
	if role != "" {
		in.Tags = map[string]string{"anyops:role": role}
	}
	inst := call[Instance](t, s.e.env, s.cloud.RunInstance, in)
	return call[Instance](t, s.e.env, s.cloud.WaitInstanceRunning, WaitInstanceInput{InstanceID: inst.ID, PollInterval: simPoll})
}

// attach creates a volume and attaches it to instance at device, waiting for both.
func (s simCloud) attach(t *testing.T, step, instance, device string, size int32, tags map[string]string) string {
	t.Helper()
	env := s.e.env
	v := call[Volume](t, env, s.cloud.CreateVolume, CreateVolumeInput{Step: step, Zone: zoneA, SizeGiB: size, Tags: tags})
	call[Volume](t, env, s.cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: v.ID, PollInterval: simPoll})
	call[Attachment](t, env, s.cloud.AttachVolume, AttachVolumeInput{VolumeID: v.ID, InstanceID: instance, Device: device})
	call[Volume](t, env, s.cloud.WaitVolumeAttached, WaitVolumeInput{VolumeID: v.ID, PollInterval: simPoll})
	return v.ID
}

// drbdPair attaches, at /dev/sdf, a volume of size GiB backing DRBD resource home0 to file
// (primary) and one to backup (secondary), with extra tags on both; it returns their ids. The
// pair is a cloudsim fixture, configured by tags; hosts_setup_test.go sets pairs up by files.
func (s simCloud) drbdPair(t *testing.T, file, backup string, size int32, extra map[string]string) (primary, secondary string) {
	t.Helper()
	tags := func(peer, role string) map[string]string {
		m := map[string]string{"anyops:drbd-resource": "home0", "anyops:drbd-peer": peer, cloudsim.FixtureTagDRBDRole: role}
		maps.Copy(m, extra)
		return m
	}
	primary = s.attach(t, "home0 primary", file, "/dev/sdf", size, tags(backup, "primary"))
	secondary = s.attach(t, "home0 secondary", backup, "/dev/sdf", size, tags(file, "secondary"))
	return primary, secondary
}

func (s simCloud) inject(t *testing.T, f cloudsim.Fault) string {
	t.Helper()
	got, err := s.sim.InjectFault(f)
	require.NoError(t, err)
	return got.ID
}

// TestCloudFaultHardwareFailure: the July 2014 outage. A failed host shows as an impaired
// system check with the time it started; SSM cannot reach it (a typed, retryable error);
// a plain stop hangs, so the activity stops with Force, and the instance comes back on new
// hardware with a start.
func TestCloudFaultHardwareFailure(t *testing.T) {
	s := newSimCloud(t)
	env := s.e.env
	id := s.launch(t, "file server")
	s.inject(t, cloudsim.Fault{Type: cloudsim.FaultHardwareFailure, InstanceID: id})

	h := call[InstanceHealth](t, env, s.cloud.InstanceStatus, InstanceRef{InstanceID: id})
	require.Equal(t, "impaired", h.SystemStatus)
	require.NotNil(t, h.ImpairedSince, "impaired since when: the failover workflow's clock")

	_, err := callErr[CommandResult](env, s.hosts.RunCommand, RunCommandInput{InstanceID: id, Commands: []string{"true"}})
	requireAppError(t, err, ErrHostUnreachable, false)

	stop := call[InstanceStateChange](t, env, s.cloud.StopInstance, StopInstanceInput{InstanceID: id, Force: true})
	require.Equal(t, "stopping", stop.Current)
	stopped := call[Instance](t, env, s.cloud.WaitInstanceStopped, WaitInstanceInput{InstanceID: id, PollInterval: simPoll})
	require.Equal(t, "stopped", stopped.State)
	again := call[InstanceStateChange](t, env, s.cloud.StopInstance, StopInstanceInput{InstanceID: id})
	require.Equal(t, "stopped", again.Current, "stopping a stopped instance is success: a retry")

	call[InstanceStateChange](t, env, s.cloud.StartInstance, InstanceRef{InstanceID: id})
	call[Instance](t, env, s.cloud.WaitInstanceRunning, WaitInstanceInput{InstanceID: id, PollInterval: simPoll})
	h = call[InstanceHealth](t, env, s.cloud.InstanceStatus, InstanceRef{InstanceID: id})
	require.NotEqual(t, "impaired", h.SystemStatus, "new hardware after stop and start")

	term := call[InstanceStateChange](t, env, s.cloud.TerminateInstance, TerminateInstanceInput{InstanceID: id})
	require.Contains(t, []string{"shutting-down", "terminated"}, term.Current)
	call[InstanceStateChange](t, env, s.cloud.TerminateInstance, TerminateInstanceInput{InstanceID: id}) // a retry
	_, err = callErr[Instance](env, s.cloud.WaitInstanceRunning, WaitInstanceInput{InstanceID: id, PollInterval: simPoll})
	requireAppError(t, err, ErrWaitFailed, true)
}

// TestCloudFaultSnapshots: a stuck snapshot makes WaitSnapshot give up at its timeout with a
// retryable error, having heartbeated the progress it saw; the retry resumes from that
// heartbeat and never reports less.
func TestCloudFaultSnapshots(t *testing.T) {
	s := newSimCloud(t)
	env := s.e.env
	vol := call[Volume](t, env, s.cloud.CreateVolume, CreateVolumeInput{Step: "dropbox", Zone: zoneA, SizeGiB: 50})
	call[Volume](t, env, s.cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: vol.ID, PollInterval: simPoll})
	snap := call[Snapshot](t, env, s.cloud.CreateSnapshot, CreateSnapshotInput{Step: "snapshot dropbox", VolumeID: vol.ID})
	fault := s.inject(t, cloudsim.Fault{Type: cloudsim.FaultStuckSnapshot, SnapshotID: snap.ID})

	_, err := callErr[Snapshot](env, s.cloud.WaitSnapshot, WaitSnapshotInput{SnapshotID: snap.ID, PollInterval: simPoll, Timeout: 300 * time.Millisecond})
	require.Error(t, err, "a stuck snapshot does not complete")
	require.False(t, isType(err, ErrSnapshotFailed), "stuck is not failed: a retry may see it move")
	stuck := s.e.hb.snapshotProgress(snap.ID)
	require.NotEmpty(t, stuck)
	require.Less(t, stuck[len(stuck)-1], 100)
	require.True(t, s.sim.ClearFault(fault))

	// The retry: a fresh environment carrying the last heartbeat, as Temporal hands it over.
	resumed, hb := activityEnv(t, s.cloud)
	last := SnapshotProgress{SnapshotID: snap.ID, State: "pending", Progress: 100}
	resumed.SetHeartbeatDetails(last) // claims more than the cloud shows: must not go down
	done := call[Snapshot](t, resumed, s.cloud.WaitSnapshot, WaitSnapshotInput{SnapshotID: snap.ID, PollInterval: simPoll})
	require.Equal(t, "completed", done.State)
	for _, p := range hb.snapshotProgress(snap.ID) {
		require.Equal(t, 100, p, "progress resumed from the heartbeat never goes backwards")
	}
}

// TestCloudFaultThrottle: throttling the SDK's own retries cannot absorb surfaces as a
// typed, retryable RequestLimitExceeded error and creates nothing; the retry with the same
// ClientToken then creates exactly one volume.
func TestCloudFaultThrottle(t *testing.T) {
	s := newSimCloud(t)
	env := s.e.env
	fault := s.inject(t, cloudsim.Fault{Type: cloudsim.FaultThrottle, Action: "CreateVolume", Count: 50})
	in := CreateVolumeInput{Step: "logs", Zone: zoneA, SizeGiB: 2}
	_, err := callErr[Volume](env, s.cloud.CreateVolume, in)
	requireAppError(t, err, ErrRequestLimitExceeded, false)
	require.True(t, s.sim.ClearFault(fault))
	v1 := call[Volume](t, env, s.cloud.CreateVolume, in)
	v2 := call[Volume](t, env, s.cloud.CreateVolume, in)
	require.Equal(t, v1.ID, v2.ID)
}

// TestCloudRunCommandResumes: a retried RunCommand whose heartbeat names the command the
// previous attempt sent looks at that command first. Still running, it is polled to its end
// and the script is not sent again; finished with Success (the previous attempt was lost after
// it), its result is this attempt's; finished with Failed, the script is sent again — reading
// the failure back would make every retry fail.
func TestCloudRunCommandResumes(t *testing.T) {
	s := newSimCloud(t)
	id := s.launch(t, "web")
	send := func(script string) string {
		out, err := s.hosts.Clients.SSM.SendCommand(context.Background(), &ssm.SendCommandInput{
			DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{id},
			Parameters: map[string][]string{"commands": {script}},
		})
		require.NoError(t, err)
		return aws.ToString(out.Command.CommandId)
	}
	tests := []struct {
		name       string
		previous   string // the script the previous attempt sent
		script     string // the script the previous attempt's heartbeat names ("": a worker before scripts were named)
		wantSame   bool   // the result is the previous attempt's command
		wantStdout string
	}{
		{"still running: polled, not sent again", "sleep 300 && echo first", "", true, "first\n"},
		{"succeeded: its result stands", "echo first", "", true, "first\n"},
		{"failed: sent again", "echo first && exit 3", "", false, "second\n"},
		{"the same script succeeded: its result stands", "echo second", scriptKey([]string{"echo second"}), true, "second\n"},
		// DRBDPromote reads `drbdadm status`, then promotes: a retry after a kill between the
		// two must not take the status command's success for the promotion's.
		{"another script of the activity succeeded: this one is sent", "echo first", scriptKey([]string{"echo first"}), false, "second\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := send(tt.previous)
			if !strings.HasPrefix(tt.previous, "sleep") {
				s.sim.Advance(time.Second) // let it finish
			}
			retry, _ := activityEnv(t, s.hosts)
			retry.SetHeartbeatDetails(CommandProgress{CommandID: prev, InstanceID: id, Status: "InProgress", Script: tt.script})
			got := call[CommandResult](t, retry, s.hosts.RunCommand, RunCommandInput{InstanceID: id, Commands: []string{"echo second"}})
			require.Equal(t, tt.wantSame, got.CommandID == prev, "command %s, previous %s", got.CommandID, prev)
			require.Equal(t, tt.wantStdout, got.Stdout)
			require.False(t, got.EndedAt.IsZero(), "the result says when the command ended")
		})
	}
}

// TestRetriedCreateSnapshotLooksWithinItsAttempt: an attempt after one that sent CreateSnapshot
// but took no snapshot (its request failed, or never reached EC2) looks for the earlier
// snapshot only as long as its own attempt leaves time to take one. With a look as long as
// the consistency window every attempt shorter than the window timed out looking, and the
// operation never took its snapshot (the chaos harness's storage change, seed 7).
func TestRetriedCreateSnapshotLooksWithinItsAttempt(t *testing.T) {
	s := newSimCloud(t)
	vol := call[Volume](t, s.e.env, s.cloud.CreateVolume, CreateVolumeInput{Step: "create home", Name: "home0", Zone: zoneA, SizeGiB: 10, VolumeType: "gp3"})
	call[Volume](t, s.e.env, s.cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: vol.ID, PollInterval: simPoll})

	s.cloud.ConsistencyWindow = time.Hour
	attempt, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	retry, _ := activityEnv(t, s.cloud)
	retry.SetWorkerOptions(worker.Options{BackgroundActivityContext: attempt})
	retry.SetHeartbeatDetails(SnapshotRequest{Step: "snapshot home0", Sent: true})
	snap, err := callErr[Snapshot](retry, s.cloud.CreateSnapshot, CreateSnapshotInput{Step: "snapshot home0", VolumeID: vol.ID, Name: "home0-snap"})
	require.NoError(t, err, "the retry must take the snapshot the earlier attempt did not, inside its own attempt")
	require.NotEmpty(t, snap.ID)
}
