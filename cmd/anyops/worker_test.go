package main

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/worker"
)

// TestWorkerAloneEnsuresSchedules runs `anyops worker` by itself, as docker-compose does,
// against a real Temporal dev server with no schedule: it proves the worker creates the
// fleet-sync schedule at start, and that a second worker started beside it (another replica,
// or a restart) comes up too and leaves one schedule in place.
func TestWorkerAloneEnsuresSchedules(t *testing.T) {
	bin := anyopsBinary(t)
	addr := testenv.Temporal(t)
	tc := testenv.TemporalClient(t)
	ctx := context.Background()
	handle := tc.ScheduleClient().GetHandle(ctx, worker.FleetSyncScheduleID)
	t.Cleanup(func() { _ = handle.Delete(context.Background()) })
	if _, err := handle.Describe(ctx); err == nil {
		t.Fatalf("schedule %s exists before any worker started", worker.FleetSyncScheduleID)
	}
	dataDir := t.TempDir()
	start := func() (*exec.Cmd, *syncBuffer, chan struct{}) {
		out := &syncBuffer{}
		cmd := exec.Command(bin, "worker", "--temporal-addr", addr, "--data-dir", dataDir, "--metrics-addr", "",
			"--aws-endpoint", "http://127.0.0.1:1")
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		})
		return cmd, out, exited
	}
	waitEnsured := func(out *syncBuffer, exited chan struct{}) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(out.String(), "schedules ensured") {
			select {
			case <-exited:
				t.Fatalf("anyops worker exited during start-up:\n%s", out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("anyops worker did not ensure its schedules within a minute:\n%s", out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	first, firstOut, firstExited := start()
	waitEnsured(firstOut, firstExited)
	d, err := handle.Describe(ctx)
	if err != nil {
		t.Fatalf("schedule %s after a worker started alone: %v\n%s", worker.FleetSyncScheduleID, err, firstOut.String())
	}
	created := d.Info.CreatedAt

	second, secondOut, secondExited := start()
	waitEnsured(secondOut, secondExited)
	for _, w := range []struct {
		cmd    *exec.Cmd
		out    *syncBuffer
		exited chan struct{}
	}{{first, firstOut, firstExited}, {second, secondOut, secondExited}} {
		_ = w.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-w.exited:
		case <-time.After(60 * time.Second):
			t.Fatalf("anyops worker did not stop within 60s of SIGINT:\n%s", w.out.String())
		}
		if code := w.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("anyops worker exited %d:\n%s", code, w.out.String())
		}
	}
	d, err = handle.Describe(ctx)
	if err != nil || !d.Info.CreatedAt.Equal(created) {
		t.Fatalf("schedule after the second worker: %v, created %v (first created %v); want the first one kept", err, d.Info.CreatedAt, created)
	}
}
