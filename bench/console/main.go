// Command console benchmarks console starts on a whole local stack (Temporal dev server,
// SQLite inventory, a real sandboxd, worker, API) and prints, one line per comparison as the
// sandbox benchmark does:
//
//	console start-to-first-prompt vs raw sandboxd create: p50 40.1 ms vs 12.3 ms (ratio 3.26), p99 ...
//	sustained console starts: 21.4/s (4 clients, 10s)
//
// The ratio is what the workflow (placement, update-with-start, inventory) costs on top of
// sandboxd. With -serve it only runs the stack and prints "ready <api url>" until SIGTERM:
// what scripts/browser-test.sh drives the browser against. Needs root (sandboxd).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/sandboxd/jail"
	"github.com/anyops/anyops/sandboxd/wire"
)

func main() {
	jail.MaybeInit() // when re-executed as a sandbox's init
	var (
		serve      = flag.Bool("serve", false, "only run the stack until SIGTERM, printing \"ready <api url>\"")
		apiAddr    = flag.String("api-addr", "", "API listen address with -serve; empty picks a free port")
		runs       = flag.Int("n", 30, "measured starts of each kind")
		warmup     = flag.Int("warmup", 3, "unmeasured starts of each kind first")
		clients    = flag.Int("clients", 4, "concurrent clients of the sustained run")
		sustainFor = flag.Duration("sustain", 10*time.Second, "length of the sustained run")
		slots      = flag.Int("slots", 16, "sandboxd slots")
		verbose    = flag.Bool("v", false, "log the stack's warnings")
	)
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/console: needs root (sandboxd: namespaces, mounts, cgroups)")
		os.Exit(1)
	}
	level := slog.LevelError
	if *verbose || *serve {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := stackOptions{APIAddr: *apiAddr, Slots: *slots, Logger: logger}
	if !*serve {
		// The benchmark is one client address starting consoles as fast as it can.
		o.Admission = api.AdmissionConfig{PerClientEvery: time.Microsecond, PerClientBurst: 1 << 20, GlobalPerSecond: 1e6, GlobalBurst: 1 << 20}
	}
	st, err := startStack(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/console: start the stack:", err)
		os.Exit(1)
	}
	defer st.Close()

	if *serve {
		fmt.Printf("ready %s\n", st.APIURL)
		<-ctx.Done()
		return
	}
	if err := bench(ctx, st, *runs, *warmup, *clients, *sustainFor); err != nil {
		fmt.Fprintln(os.Stderr, "bench/console:", err)
		st.Close()
		os.Exit(1)
	}
}

func bench(ctx context.Context, st *stack, runs, warmup, clients int, sustainFor time.Duration) error {
	var consoleTimes, rawTimes []time.Duration
	// Interleaved, so that drift of the machine's load hits both kinds alike.
	for i := range warmup + runs {
		c, err := consoleStart(ctx, st)
		if err != nil {
			return fmt.Errorf("console start %d: %w", i, err)
		}
		r, err := rawStart(ctx, st, i)
		if err != nil {
			return fmt.Errorf("raw sandboxd start %d: %w", i, err)
		}
		if i >= warmup {
			consoleTimes, rawTimes = append(consoleTimes, c), append(rawTimes, r)
		}
	}
	cp50, cp99 := percentile(consoleTimes, 50), percentile(consoleTimes, 99)
	rp50, rp99 := percentile(rawTimes, 50), percentile(rawTimes, 99)
	fmt.Printf("console start-to-first-prompt vs raw sandboxd create: p50 %.1f ms vs %.1f ms (ratio %.2f), p99 %.1f ms vs %.1f ms (ratio %.2f), n=%d\n",
		ms(cp50), ms(rp50), float64(cp50)/float64(rp50), ms(cp99), ms(rp99), float64(cp99)/float64(rp99), runs)

	var done, failed atomic.Int64
	deadline := time.Now().Add(sustainFor)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if _, err := consoleStart(ctx, st); err != nil {
					failed.Add(1)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("sustained console starts: %.1f/s (%d clients, %s, %d started, %d refused or failed)\n",
		float64(done.Load())/elapsed.Seconds(), clients, sustainFor, done.Load(), failed.Load())
	return nil
}

// consoleStart times POST /v1/consoles to the first terminal byte on the attach WebSocket,
// then closes the console (not timed).
func consoleStart(ctx context.Context, st *stack) (time.Duration, error) {
	t0 := time.Now()
	resp, err := http.Post(st.APIURL+"/v1/consoles", "application/json", bytes.NewReader([]byte(`{"command":"bash"}`)))
	if err != nil {
		return 0, err
	}
	var con api.ConsoleResponse
	err = json.NewDecoder(resp.Body).Decode(&con)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("POST /v1/consoles: %s (%v)", resp.Status, err)
	}
	defer closeConsole(st, con)
	if err := firstByte(ctx, con.AttachURL); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func closeConsole(st *stack, con api.ConsoleResponse) {
	req, _ := http.NewRequest(http.MethodDelete, st.APIURL+"/v1/consoles/"+con.ID, nil)
	req.Header.Set("Authorization", "Bearer "+con.Token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// rawStart times sandboxd's create to the first terminal byte, the same shell for the same
// kind of user, with no workflow, then deletes the sandbox (not timed).
func rawStart(ctx context.Context, st *stack, i int) (time.Duration, error) {
	t0 := time.Now()
	sb, err := st.Sandboxd.Create(ctx, wire.CreateRequest{User: fmt.Sprintf("raw%d", i), UID: 200000 + i, Plan: anyops.PlanAnonymous,
		Command: api.ConsoleCommands["bash"]})
	if err != nil {
		return 0, err
	}
	defer st.Sandboxd.Delete(context.Background(), sb.ID)
	url, _, err := st.Sandboxd.AttachURL(sb.ID)
	if err != nil {
		return 0, err
	}
	if err := firstByte(ctx, url); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func firstByte(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for the first prompt byte: %w", err)
		}
		if typ == websocket.MessageBinary && len(b) > 0 {
			return nil
		}
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(i-1, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
