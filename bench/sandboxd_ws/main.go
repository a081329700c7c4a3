// Command sandboxd_ws measures the keystroke echo round trip through sandboxd's WebSocket —
// one byte typed in a browser-like client, through sandboxd and the sandbox's PTY to a program
// that echoes it, and back — side by side with the same program on a PTY of the benchmark's
// own (no daemon, no network, no sandbox), and prints one line:
//
//	sandboxd keystroke echo round trip (WebSocket) vs PTY direct: 0.2 ms vs 0.05 ms, ratio 4.0
//
// The echoing program is `stty raw -echo; cat` in both: the program echoes, not the line
// discipline, as a shell's readline does. With -sandboxd-url and -sandboxd-key it measures a
// running sandboxd; without, it starts one in-process (root: it creates real sandboxes).
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd"
	"github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/homes"
	sbimages "github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/jail"
	"github.com/anyops/anyops/sandboxd/sandboxdtest/teardown"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// echoer puts the terminal in raw mode, says it is ready and echoes every byte itself.
var echoer = []string{"sh", "-c", "stty raw -echo; printf ready; exec cat"}

func main() {
	jail.MaybeInit() // the in-process sandboxd re-executes this binary as the sandboxes' init
	n := flag.Int("n", 500, "measured keystrokes on each side")
	warmup := flag.Int("warmup", 50, "unmeasured keystrokes on each side first")
	url := flag.String("sandboxd-url", "", "base URL of a running sandboxd (empty: start one in-process)")
	keyFile := flag.String("sandboxd-key", "", "Ed25519 private key file whose public key that sandboxd trusts")
	flag.Parse()
	if err := run(*n, *warmup, *url, *keyFile); err != nil {
		fmt.Fprintln(os.Stderr, "bench sandboxd_ws:", err)
		os.Exit(1)
	}
}

func run(n, warmup int, url, keyFile string) error {
	var signer *token.Signer
	if url == "" {
		stop, u, s, err := startSandboxd()
		if err != nil {
			return err
		}
		defer stop()
		url, signer = u, s
	} else {
		key, err := token.ReadPrivateKey(keyFile)
		if err != nil {
			return err
		}
		signer = token.NewSigner(key)
	}
	c, err := client.New(url, signer)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	sb, err := c.Create(ctx, wire.CreateRequest{User: "bench", UID: anyops.FirstSandboxID, Plan: anyops.PlanPaid, Command: echoer})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer func() { _ = c.Delete(context.Background(), sb.ID) }()
	conn, err := c.Dial(ctx, sb.ID)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	defer conn.CloseNow()
	ws := &wsTerminal{ctx: ctx, conn: conn}
	if err := waitFor(ws, "ready"); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}

	local, err := startLocal()
	if err != nil {
		return err
	}
	defer local.close()
	if err := waitFor(local, "ready"); err != nil {
		return fmt.Errorf("local PTY: %w", err)
	}

	var ours, theirs []time.Duration
	for i := 0; i < warmup+n; i++ {
		a, err := roundTrip(ws)
		if err != nil {
			return fmt.Errorf("WebSocket keystroke: %w", err)
		}
		b, err := roundTrip(local)
		if err != nil {
			return fmt.Errorf("PTY keystroke: %w", err)
		}
		if i >= warmup {
			ours, theirs = append(ours, a), append(theirs, b)
		}
	}
	ma, mb := median(ours), median(theirs)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Printf("sandboxd keystroke echo round trip (WebSocket) vs PTY direct: %.3f ms vs %.3f ms, ratio %.2f\n", ms(ma), ms(mb), float64(ma)/float64(mb))
	return nil
}

// terminal is one side of the comparison: write keystrokes, read what comes back.
type terminal interface {
	write(p []byte) error
	read() ([]byte, error)
}

// roundTrip types one byte and waits for its echo.
func roundTrip(t terminal) (time.Duration, error) {
	start := time.Now()
	if err := t.write([]byte{'x'}); err != nil {
		return 0, err
	}
	for {
		b, err := t.read()
		if err != nil {
			return 0, err
		}
		if bytes.IndexByte(b, 'x') >= 0 {
			return time.Since(start), nil
		}
	}
}

func waitFor(t terminal, want string) error {
	var seen []byte
	for !bytes.Contains(seen, []byte(want)) {
		b, err := t.read()
		if err != nil {
			return fmt.Errorf("waiting for %q (got %q): %w", want, seen, err)
		}
		seen = append(seen, b...)
	}
	return nil
}

type wsTerminal struct {
	ctx  context.Context
	conn *websocket.Conn
}

func (w *wsTerminal) write(p []byte) error {
	return w.conn.Write(w.ctx, websocket.MessageBinary, p)
}

func (w *wsTerminal) read() ([]byte, error) {
	for {
		typ, b, err := w.conn.Read(w.ctx)
		if err != nil {
			return nil, err
		}
		if typ == websocket.MessageBinary {
			return b, nil
		}
	}
}

type localTerminal struct {
	cmd *exec.Cmd
	pty *os.File
	buf []byte
}

func startLocal() (*localTerminal, error) {
	cmd := exec.Command(echoer[0], echoer[1:]...)
	f, err := pty.Start(cmd)
	if err != nil {
		return nil, err
	}
	return &localTerminal{cmd: cmd, pty: f, buf: make([]byte, 4096)}, nil
}

func (l *localTerminal) write(p []byte) error { _, err := l.pty.Write(p); return err }

func (l *localTerminal) read() ([]byte, error) {
	n, err := l.pty.Read(l.buf)
	if n > 0 {
		return l.buf[:n], nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

func (l *localTerminal) close() {
	_ = l.cmd.Process.Signal(syscall.SIGKILL)
	_ = l.cmd.Wait()
	_ = l.pty.Close()
}

// startSandboxd runs a sandboxd in this process on a free port, with a fresh key and
// throw-away directories, and returns how to stop it.
func startSandboxd() (stop func(), url string, signer *token.Signer, err error) {
	if os.Geteuid() != 0 {
		return nil, "", nil, errors.New("an in-process sandboxd needs root; pass -sandboxd-url and -sandboxd-key to use a running one")
	}
	pub, priv, err := token.GenerateKey()
	if err != nil {
		return nil, "", nil, err
	}
	// The console image of the machine's image cache (built there on first use) is the default.
	images, err := sbimages.OpenCache()
	if err != nil {
		return nil, "", nil, err
	}
	if _, err := images.EnsureConsole(context.Background(), os.Stderr); err != nil {
		return nil, "", nil, err
	}
	dir, err := os.MkdirTemp("", "anyops-bench-ws-")
	if err != nil {
		return nil, "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sandboxd.Run(ctx, sandboxd.Config{
			Addr: l.Addr().String(), PublicKey: ed25519.PublicKey(pub),
			StorageRoot: dir + "/homes", HomeQuota: homes.QuotaNone, StateDir: dir + "/state", ImageStore: images.Dir(), CgroupParent: "anyops-bench-ws",
			Slots: 4, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
	}()
	_ = l.Close() // Run listens itself; the port was only reserved
	url = "http://" + l.Addr().String()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			cancel()
			return nil, "", nil, fmt.Errorf("sandboxd: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			return nil, "", nil, errors.New("sandboxd did not come up")
		}
	}
	stop = func() {
		cancel()
		<-done
		teardown.RemoveCgroupParent("anyops-bench-ws")
		if err := teardown.RemoveStateDir(dir); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}
	return stop, url, token.NewSigner(priv), nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
