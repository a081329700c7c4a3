package activities

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/internal/testenv"
)

// runWithRetries is a workflow that runs one activity by name with a retry policy of three
// quick attempts, as the fleet workflows run host commands.
func runWithRetries(ctx workflow.Context, activityName string, input map[string]any) (map[string]any, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 10 * time.Millisecond, BackoffCoefficient: 1, MaximumAttempts: 3},
	})
	var out map[string]any
	err := workflow.ExecuteActivity(ctx, activityName, input).Get(ctx, &out)
	return out, err
}

// temporalWorker starts a worker on the shared Temporal dev server, on a task queue of the
// test's own, running runWithRetries and the activities acts; it stops when the test ends.
func temporalWorker(t *testing.T, opts worker.Options, acts ...any) (client.Client, string) {
	t.Helper()
	tc := testenv.TemporalClient(t)
	queue := "test-activities-" + uuid.NewString()
	w := worker.New(tc, queue, opts)
	w.RegisterWorkflowWithOptions(runWithRetries, workflow.RegisterOptions{Name: "runWithRetries"})
	for _, a := range acts {
		w.RegisterActivity(a)
	}
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return tc, queue
}

// runActivity runs runWithRetries under workflow id id and returns the activity's result.
func runActivity(t *testing.T, tc client.Client, queue, id, activity string, input map[string]any) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, "runWithRetries", activity, input)
	require.NoError(t, err)
	var out map[string]any
	err = run.Get(ctx, &out)
	return out, err
}

// TestHostsCommandFailingOnceIsSentAgain runs each host activity on the real Temporal dev
// server against cloudsim, with the command it sends made to fail once (a command-failure
// fault). It proves the retry Temporal schedules sends the command again — two SendCommands —
// and succeeds, instead of reading the first attempt's failed invocation back from the
// heartbeat and failing on every attempt; and that a failure no retry fixes (a service the
// host does not have) is sent once and fails the workflow with its type.
func TestHostsCommandFailingOnceIsSentAgain(t *testing.T) {
	s := newSimCloud(t)
	sim, hosts := s.sim, s.hosts
	file, backup := s.launchAs(t, "file-1", "file"), s.launchAs(t, "backup-1", "backup")
	s.drbdPair(t, file, backup, 2, map[string]string{cloudsim.FixtureTagDRBDDisk: "UpToDate"})
	s.shell(t, file, "mkfs.ext4 -q /dev/drbd0") // a new volume has no file system to mount

	tc, queue := temporalWorker(t, worker.Options{}, hosts)

	sends := func(since int64) int {
		n := 0
		for _, ev := range sim.Events(since, 0) {
			if ev.Type == "ssm.command.sent" && ev.Resource == file {
				n++
			}
		}
		return n
	}
	lastSeq := func() int64 {
		evs := sim.Events(0, 1)
		return evs[len(evs)-1].Seq
	}
	export := map[string]any{"InstanceID": file, "Path": "/srv/home", "Clients": "10.0.0.0/16", "Options": "rw,sync"}
	steps := []struct {
		activity string
		input    map[string]any
		fail     string // the command the fault fails once
		exit     int    // with this exit code (0: cloudsim's default, 1)
	}{
		// In order: each step leaves the host as the next one needs it.
		{"Mount", map[string]any{"InstanceID": file, "Device": "/dev/drbd0", "MountPoint": "/srv/home", "FSType": "ext4"}, "mount -t ext4", 0},
		{"ExportNFS", export, "exportfs -o", 0},
		{"UnexportNFS", export, "exportfs -u", 0},
		{"Umount", map[string]any{"InstanceID": file, "MountPoint": "/srv/home"}, "umount", 0},
		{"Fsck", map[string]any{"InstanceID": file, "Device": "/dev/drbd0"}, "fsck -n", 8}, // 1 would mean "errors corrected"
		{"RestartService", map[string]any{"InstanceID": file, "Service": "ssh"}, "systemctl restart", 0},
		{"UpgradePackage", map[string]any{"InstanceID": file, "Packages": []string{"openssl"}}, "apt-get install", 0},
		{"DRBDStatus", map[string]any{"InstanceID": file, "Resource": "home0"}, "drbdadm status", 0},
		{"RunCommand", map[string]any{"InstanceID": file, "Commands": []string{"echo retried"}}, "echo retried", 0},
	}
	execute := func(activity string, input map[string]any) error {
		_, err := runActivity(t, tc, queue, "host-retry-"+uuid.NewString(), activity, input)
		return err
	}
	for _, step := range steps {
		t.Run(step.activity, func(t *testing.T) {
			before := lastSeq()
			_, err := sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultCommandFailure, InstanceID: file, Command: step.fail, Count: 1, ExitCode: step.exit})
			require.NoError(t, err)
			require.NoError(t, execute(step.activity, step.input), "the retry after the injected failure must succeed")
			require.Equal(t, 2, sends(before), "the command is sent once per attempt: failed, then sent again")
			active, _ := sim.Faults()
			require.Empty(t, active, "the injected failure was used")
		})
	}

	t.Run("a failure no retry fixes is not retried", func(t *testing.T) {
		before := lastSeq()
		err := execute("RestartService", map[string]any{"InstanceID": file, "Service": "no-such-service"})
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, err, &appErr)
		require.Equal(t, ErrServiceNotFound, appErr.Type(), "error: %v", err)
		require.Equal(t, 1, sends(before))
		require.True(t, strings.Contains(err.Error(), "no-such-service"), "the error names the service: %v", err)
	})
}
