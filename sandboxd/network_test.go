package sandboxd

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/network"
	"github.com/anyops/anyops/sandboxd/network/networktest"
	"github.com/anyops/anyops/sandboxd/sandboxdtest/teardown"
)

// A create request gets its plan's network unless it asks for less; more than the plan's, or
// the host's network (no longer a policy), is refused.
func TestCreateGetsItsPlansNetwork(t *testing.T) {
	s := validatingServer()
	for _, tt := range []struct {
		plan      anyops.Plan
		requested anyops.NetworkPolicy
		want      anyops.NetworkPolicy // "" = refused
	}{
		{anyops.PlanAnonymous, "", anyops.NetworkNone},
		{anyops.PlanFree, "", anyops.NetworkProxy},
		{anyops.PlanPaid, "", anyops.NetworkInternet},
		{anyops.PlanTarpit, "", anyops.NetworkProxyThrottled},
		{anyops.PlanPaid, anyops.NetworkNone, anyops.NetworkNone},
		{anyops.PlanPaid, anyops.NetworkProxy, anyops.NetworkProxy},
		{anyops.PlanFree, anyops.NetworkProxyThrottled, anyops.NetworkProxyThrottled},
		{anyops.PlanFree, anyops.NetworkInternet, ""},
		{anyops.PlanTarpit, anyops.NetworkProxy, ""},
		{anyops.PlanAnonymous, anyops.NetworkProxyThrottled, ""},
		{anyops.PlanPaid, "host", ""},
	} {
		t.Run(fmt.Sprintf("%s asks %q", tt.plan, tt.requested), func(t *testing.T) {
			req := shell()
			req.ID, req.Plan, req.Network = "console-1-1", tt.plan, tt.requested
			spec, info, err := s.validateCreate(req)
			if tt.want == "" {
				if anyops.ErrorCode(err) != anyops.EINVALID {
					t.Fatalf("got %v (%v), want invalid", spec.Network, err)
				}
				return
			}
			if err != nil || spec.Network != tt.want || info.Network != tt.want {
				t.Fatalf("got spec %q, info %q, %v; want %q", spec.Network, info.Network, err, tt.want)
			}
		})
	}
}

// From inside a paid (internet) and a free (proxy) console, sandboxd's own port is closed on
// every address of the host: the daemon here serves on all of them, as in production.
func TestConsolesCannotReachSandboxd(t *testing.T) {
	h := newHarness(t, nil)
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h.srv}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && !ip.Unmap().IsLoopback() && !ip.IsLinkLocalUnicast() {
				targets = append(targets, fmt.Sprintf("%q", ip.Unmap().String()))
			}
		}
	}
	// The gateway of the sandbox's own link is a host address too.
	script := fmt.Sprintf(`import socket
gw = [l.split()[2] for l in open("/proc/net/route").readlines()[1:] if l.split()[1] == "00000000"]
gw = [socket.inet_ntoa(bytes.fromhex(g)[::-1]) for g in gw]
for host in [%s] + gw:
    try:
        socket.create_connection((host, %d), timeout=3).close(); print("REACHED", host)
    except OSError as e:
        print("closed", host, e.errno)
print("probed", len(gw), "gateway")
`, strings.Join(targets, ", "), port)
	for _, plan := range []anyops.Plan{anyops.PlanPaid, anyops.PlanFree} {
		t.Run(string(plan), func(t *testing.T) {
			req := shell()
			req.Plan, req.Command = plan, []string{"python3", "-c", script}
			sb := h.create(req)
			tm := h.attach(sb.ID)
			tm.waitOutput("probed 1 gateway")
			if out := tm.output(); strings.Contains(out, "REACHED") {
				t.Fatalf("a %s console reached sandboxd's port %d:\n%s", plan, port, out)
			}
		})
	}
}

// A daemon that fails to start (here: no slots) leaves no network table behind.
func TestFailedStartLeavesNoNetworkTable(t *testing.T) {
	testenv.RequireRoot(t)
	parent := "anyops-sandboxd-test-" + randomHex(4)
	cfg := Config{PublicKey: make([]byte, 32), StorageRoot: t.TempDir(), StateDir: stateDir(t), CgroupParent: parent, Slots: 0}
	if _, err := New(cfg); err == nil {
		t.Fatal("New with no slots started")
	}
	defer teardown.RemoveCgroupParent(parent)
	if networktest.TableExists(t, network.InstanceName(parent)) {
		t.Fatalf("table %s outlived the failed start", network.InstanceName(parent))
	}
}
