// Command sandbox benchmarks sandboxd's isolation against bubblewrap, side by side in one run,
// and prints one line per comparison:
//
//	sandbox start-to-exit (network none) vs bwrap: 6.1 ms vs 5.0 ms, ratio 1.22
//	sandbox start-to-exit (network internet) vs bwrap: 7.0 ms vs 5.0 ms, ratio 1.40
//	network link (internet) of a sandbox: attach 1.1 ms, close 2.3 ms (medians; attach overlaps the init's root)
//
// start-to-exit: /bin/true in a full sandbox (namespaces, pivoted read-only root, home, /tmp,
// /proc, /dev, cgroup limits, rlimits, capabilities dropped, seccomp) from Manager.Start until
// Wait returns, against `bwrap --unshare-all ... /bin/true` (no cgroups, no network beyond
// loopback) from fork to exit: once with network none (anonymous), once with internet (paid:
// a veth pair, addresses and a route on both ends, the DNS relay; the nftables rules are
// static, so nothing of them per sandbox). The link line times Link.Attach and Link.Close on
// their own, against a process that only holds a network namespace.
//
// create-to-first-prompt-byte over the WebSocket (with -sandboxd-url and -sandboxd-key): a
// login shell created through a running sandboxd's HTTP API and attached over its WebSocket,
// until the first terminal byte arrives, against bwrap running the same shell on a PTY.
//
// Runs as root. bench/sandbox.sh builds it with the small init binary beside it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/jail"
	"github.com/anyops/anyops/sandboxd/network"
)

func main() {
	jail.MaybeInit() // in case no anyops-sandbox-init sits beside this binary
	n := flag.Int("n", 200, "measured runs of each side")
	warmup := flag.Int("warmup", 20, "unmeasured runs of each side first")
	bwrap := flag.String("bwrap", "/usr/bin/bwrap", "bubblewrap binary")
	wsURL := flag.String("sandboxd-url", "", "base URL of a running sandboxd for the WebSocket comparison (empty: skip it)")
	wsKey := flag.String("sandboxd-key", "", "Ed25519 private key file whose public key that sandboxd trusts")
	flag.Parse()
	if err := run(*n, *warmup, *bwrap, *wsURL, *wsKey); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n, warmup int, bwrap, wsURL, wsKey string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (namespaces, mounts, cgroups)")
	}
	dir, err := os.MkdirTemp("", "anyops-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := images.OpenCache()
	if err != nil {
		return err
	}
	img, err := store.EnsureConsole(context.Background(), os.Stderr)
	if err != nil {
		return err
	}
	m, err := jail.NewManager(jail.Config{StateDir: filepath.Join(dir, "state"), CgroupParent: fmt.Sprintf("anyops-bench-%d", os.Getpid())})
	if err != nil {
		return err
	}
	defer removeCgroupParent(m)
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return err
	}
	if err := os.Chown(home, 1000, 1000); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "init %s, cgroup %s, %d runs each after %d warm-up runs\n", m.InitPath(), m.CgroupVersion(), n, warmup)

	seq := 0
	sandboxTrue := func(network anyops.NetworkPolicy) (time.Duration, error) {
		seq++
		spec := jail.Spec{
			ID: fmt.Sprintf("bench-%d", seq), User: "bench", UID: 1000, GID: 1000,
			ImageRoot: img.Root, Home: home, Command: []string{"/bin/true"},
			Limits: anyops.PlanLimits(anyops.PlanFree), Network: network,
		}
		start := time.Now()
		sb, err := m.Start(context.Background(), spec)
		if err != nil {
			return 0, err
		}
		code, err := sb.Wait()
		elapsed := time.Since(start)
		if derr := sb.Destroy(); err == nil {
			err = derr
		}
		if err == nil && code != 0 {
			err = fmt.Errorf("/bin/true exited %d in the sandbox", code)
		}
		return elapsed, err
	}
	bwrapArgs := append(bwrapIsolation(img.Root), "/bin/true")
	bwrapTrue := func() (time.Duration, error) {
		start := time.Now()
		out, err := exec.Command(bwrap, bwrapArgs...).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("bwrap: %v: %s", err, out)
		}
		return time.Since(start), nil
	}
	for _, network := range []anyops.NetworkPolicy{anyops.NetworkNone, anyops.NetworkInternet} {
		ours, theirs, err := sideBySide(n, warmup, func() (time.Duration, error) { return sandboxTrue(network) }, bwrapTrue)
		if err != nil {
			return err
		}
		printComparison(fmt.Sprintf("sandbox start-to-exit (network %s) vs bwrap", network), ours, theirs)
	}
	if err := linkPhases(m.Network(), n); err != nil {
		return err
	}

	if wsURL == "" {
		fmt.Fprintln(os.Stderr, "create-to-first-prompt-byte over WebSocket: skipped (no -sandboxd-url)")
		return nil
	}
	ours, theirs, err := sideBySide(n/4+1, warmup/4+1,
		func() (time.Duration, error) { return createToFirstByteWS(wsURL, wsKey, img.Ref()) },
		func() (time.Duration, error) { return bwrapToFirstPromptByte(bwrap, img.Root) })
	if err != nil {
		return err
	}
	printComparison("sandbox create-to-first-prompt-byte (WebSocket) vs bwrap (PTY)", ours, theirs)
	return nil
}

// bwrapIsolation is bubblewrap's closest equivalent of a sandbox: every namespace, a new
// session, the same image root read-only, its own /proc, /dev and /tmp. No cgroups.
func bwrapIsolation(root string) []string {
	return []string{"--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", root, "/",
		"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"}
}

// sideBySide alternates the two measurements so both see the same machine load.
func sideBySide(n, warmup int, ours, theirs func() (time.Duration, error)) (a, b []time.Duration, err error) {
	for i := 0; i < warmup+n; i++ {
		da, err := ours()
		if err != nil {
			return nil, nil, err
		}
		db, err := theirs()
		if err != nil {
			return nil, nil, err
		}
		if i >= warmup {
			a, b = append(a, da), append(b, db)
		}
	}
	return a, b, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printComparison(what string, ours, theirs []time.Duration) {
	a, b := median(ours), median(theirs)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Printf("%s: %.1f ms vs %.1f ms, ratio %.2f\n", what, ms(a), ms(b), float64(a)/float64(b))
}

// linkPhases times a paid sandbox's link on its own: Attach (veth pair, addresses, route, DNS
// relay) and Close (the relay stopped; the veth's deletion and the conntrack cleanup follow in
// the background), n times each, each against a fresh process holding only a network namespace.
func linkPhases(nm *network.Manager, n int) error {
	var attach, closing []time.Duration
	for range n {
		holder := exec.Command("/bin/sleep", "600")
		holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
		if err := holder.Start(); err != nil {
			return err
		}
		l, err := nm.Prepare(anyops.NetworkInternet)
		if err == nil {
			start := time.Now()
			err = l.Attach(holder.Process.Pid)
			attached := time.Now()
			if cerr := l.Close(); err == nil {
				err = cerr
			}
			attach, closing = append(attach, attached.Sub(start)), append(closing, time.Since(attached))
		}
		_ = holder.Process.Kill()
		_ = holder.Wait()
		if err != nil {
			return err
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Printf("network link (internet) of a sandbox: attach %.2f ms, close %.2f ms (medians; attach overlaps the init's root)\n",
		ms(median(attach)), ms(median(closing)))
	return nil
}

func removeCgroupParent(m *jail.Manager) {
	if _, err := m.CleanupStale(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
	}
	if err := m.RemoveCgroupParent(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
	}
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
	}
}
