// Package devstack holds the parts of `anyops dev` that are not servers of their own: the
// supervised Temporal dev server child, port checks and the admin token file.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/anyops/anyops/internal/temporaldev"
)

// CheckPortsFree fails with a message naming the flag when any address is already taken, so a
// second `anyops dev` or a stray process is reported before anything starts.
func CheckPortsFree(addrs map[string]string) error {
	flags := make([]string, 0, len(addrs))
	for flag := range addrs {
		flags = append(flags, flag)
	}
	sort.Strings(flags)
	var taken []string
	for _, flag := range flags {
		l, err := net.Listen("tcp", addrs[flag])
		if err != nil {
			taken = append(taken, fmt.Sprintf("%s is in use (--%s): %v", addrs[flag], flag, err))
			continue
		}
		l.Close()
	}
	if len(taken) > 0 {
		return errors.New(strings.Join(taken, "; ") + "; stop what holds it or pass another address")
	}
	return nil
}

// EnsureToken returns the token stored in file, creating a random one with mode 0600 first if
// the file does not exist, so a restarted stack keeps its credentials.
func EnsureToken(file string) (string, error) {
	if b, err := os.ReadFile(file); err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

// FindTemporal returns the Temporal CLI to run: bin/temporal beside the running executable
// (where `make build` puts both), then ./bin/temporal, then PATH.
func FindTemporal() (string, error) {
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "temporal"))
	}
	candidates = append(candidates, filepath.Join("bin", "temporal"))
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return filepath.Abs(c)
		}
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("temporal CLI not found beside the executable, in ./bin or on PATH: run `make build` (installs Temporal CLI %s into bin/)", temporaldev.Version)
}

// TemporalOptions configure the dev server child.
type TemporalOptions struct {
	Bin     string // the Temporal CLI
	Addr    string // frontend host:port
	UIAddr  string // Web UI host:port
	DBFile  string // SQLite file that keeps workflows across restarts
	LogFile string // where the child's output goes
	Logger  *slog.Logger
}

// Temporal is a supervised Temporal dev server: restarted when it dies, stopped with its whole
// process group when the context ends.
type Temporal struct {
	opts TemporalOptions
	done chan struct{}
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// StartTemporal starts the dev server and waits until its frontend answers health checks.
func StartTemporal(ctx context.Context, opts TemporalOptions) (*Temporal, error) {
	t := &Temporal{opts: opts, done: make(chan struct{})}
	exited, err := t.start()
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, opts.Addr, exited, 90*time.Second); err != nil {
		t.kill()
		return nil, fmt.Errorf("temporal dev server: %w (log: %s)", err, opts.LogFile)
	}
	go t.supervise(ctx, exited)
	return t, nil
}

func (t *Temporal) args() []string {
	host, port, _ := net.SplitHostPort(t.opts.Addr)
	uiHost, uiPort, _ := net.SplitHostPort(t.opts.UIAddr)
	args := []string{"server", "start-dev",
		"--ip", host, "--port", port,
		"--ui-ip", uiHost, "--ui-port", uiPort,
		"--db-filename", t.opts.DBFile,
		"--namespace", "default",
		"--log-level", "warn",
	}
	return append(args, temporaldev.Args()...)
}

// start launches the child in its own process group and returns a channel closed when it exits.
func (t *Temporal) start() (<-chan struct{}, error) {
	logf, err := os.OpenFile(t.opts.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(t.opts.Bin, t.args()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group so Stop can kill the UI server child too; Pdeathsig so even a kill -9
	// of anyops leaves nothing running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", t.opts.Bin, err)
	}
	t.mu.Lock()
	t.cmd = cmd
	t.mu.Unlock()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return exited, nil
}

// supervise restarts the child when it dies, with backoff, until ctx ends; then stops it.
func (t *Temporal) supervise(ctx context.Context, exited <-chan struct{}) {
	defer close(t.done)
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			t.stop(exited)
			return
		case <-exited:
		}
		t.opts.Logger.Warn("temporal dev server exited; restarting", "backoff", backoff, "log", t.opts.LogFile)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 30*time.Second {
			backoff *= 2
		}
		var err error
		if exited, err = t.start(); err != nil {
			t.opts.Logger.Error("restart temporal dev server", "err", err)
			closed := make(chan struct{})
			close(closed)
			exited = closed
		}
	}
}

// stop sends SIGTERM to the child's group, then SIGKILL after a grace period.
func (t *Temporal) stop(exited <-chan struct{}) {
	t.mu.Lock()
	cmd := t.cmd
	t.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

func (t *Temporal) kill() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd != nil && t.cmd.Process != nil {
		_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Done is closed once the child has been stopped after the context ended.
func (t *Temporal) Done() <-chan struct{} { return t.done }

// Pid is the process id of the current child.
func (t *Temporal) Pid() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd == nil || t.cmd.Process == nil {
		return 0
	}
	return t.cmd.Process.Pid
}

func waitHealthy(ctx context.Context, addr string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-exited:
			return errors.New("exited during start-up")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := client.DialContext(dctx, client.Options{HostPort: addr, Logger: quietLogger})
		if err == nil {
			_, err = c.CheckHealth(dctx, &client.CheckHealthRequest{})
			c.Close()
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %s: %w", limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// quietLogger keeps the SDK's dial retries out of the dev console while the server starts.
var quietLogger = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
