package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anyops/anyops/internal/testenv"
)

// TestCheckPortsFreeNamesTheFlag proves a taken port is reported with the flag to change.
func TestCheckPortsFreeNamesTheFlag(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	free := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	err = CheckPortsFree(map[string]string{"api-addr": l.Addr().String(), "temporal-addr": free})
	if err == nil || !strings.Contains(err.Error(), "--api-addr") || strings.Contains(err.Error(), "--temporal-addr") {
		t.Fatalf("err = %v, want only --api-addr named", err)
	}
	if err := CheckPortsFree(map[string]string{"temporal-addr": free}); err != nil {
		t.Fatalf("free port reported taken: %v", err)
	}
}

// TestEnsureTokenPersists proves a restart keeps the admin token and the file is private.
func TestEnsureTokenPersists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "admin-token")
	first, err := EnsureToken(file)
	if err != nil {
		t.Fatal(err)
	}
	second, err := EnsureToken(file)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || len(first) < 32 {
		t.Fatalf("tokens %q and %q: want one stable random token", first, second)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

// TestTemporalChildStopsWithContext runs the real dev server from bin/temporal, proves it
// answers, is restarted after a crash, and that ending the context leaves no process behind.
func TestTemporalChildStopsWithContext(t *testing.T) {
	bin := testenv.TemporalBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tmp, err := StartTemporal(ctx, TemporalOptions{
		Bin:     bin,
		Addr:    fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		UIAddr:  fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		DBFile:  filepath.Join(dir, "temporal.db"),
		LogFile: filepath.Join(dir, "temporal.log"),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	first := tmp.Pid()
	_ = syscall.Kill(-first, syscall.SIGKILL)
	deadline := time.Now().Add(30 * time.Second)
	for tmp.Pid() == first {
		if time.Now().After(deadline) {
			t.Fatal("dev server not restarted after it was killed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	second := tmp.Pid()
	cancel()
	select {
	case <-tmp.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("dev server not stopped after the context ended")
	}
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(-second, 0); err == nil {
		t.Fatalf("process group %d still alive", second)
	}
}
