package jail

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/network"
	"github.com/anyops/anyops/sandboxd/network/networktest"
)

// The network suite: sandboxes of each policy probe, from inside, "the internet" (a network
// namespace of networktest standing in for it, routed from the host), the instance metadata
// address (routed to that internet for the test's pool, so only the rules stand in the way),
// a private-range server, every address of the host, and each other.

// probes is a python program that tries each (label, host, port) over TCP and prints
// "label: open <what the server said>" or "label: closed <errno>", then runs extra, which may
// call dns(label, server) to ask a DNS server for web.test over UDP.
func probes(targets [][3]string, extra string) string {
	var list []string
	for _, p := range targets {
		list = append(list, fmt.Sprintf("(%q, %q, %s)", p[0], p[1], p[2]))
	}
	return fmt.Sprintf(`exec python3 - <<'EOF'
import socket, urllib.request, urllib.error, http.client, os
def tcp(label, host, port):
    try:
        c = socket.create_connection((host, port), timeout=3)
        c.sendall(b"GET / HTTP/1.0\r\nHost: probe\r\n\r\n")
        data = c.recv(300).decode(errors="replace")
        print(label + ": open", data.split("\r\n\r\n")[-1].strip().replace("\n", " "))
    except OSError as e:
        print(label + ": closed", e.errno)
def dns(label, server):
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x04test\x00\x00\x01\x00\x01"
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
        s.connect((server, 53)); s.send(query)
        print(label + ": open", len(s.recv(512)), "bytes")
    except OSError as e:
        print(label + ": closed", e.errno)
for label, host, port in [%s]:
    tcp(label, host, port)
%s
EOF`, strings.Join(list, ", "), extra)
}

// hostListener stands for sandboxd's port: a TCP listener on every address of the host.
func hostListener(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "hello from the host\n")
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// hostAddresses are the host's own addresses a sandbox could aim at (not loopback: a
// sandbox's 127.0.0.1 is its own).
func hostAddresses(t *testing.T) []netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && !ip.Unmap().IsLoopback() && !ip.IsLinkLocalUnicast() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// hostProbes are probes of the host listener on each of addrs, labelled host-<addr>.
func hostProbes(addrs []netip.Addr, port int) [][3]string {
	var out [][3]string
	for _, a := range addrs {
		out = append(out, [3]string{"host-" + a.String(), a.String(), fmt.Sprint(port)})
	}
	return out
}

// netFixture is a fixture whose sandboxes reach in through its proxy (allowlist: web.test,
// *.wild.test, and two names that resolve where no sandbox may go) and its DNS relay.
func netFixture(t *testing.T) (*fixture, *networktest.Internet) {
	t.Helper()
	pool := networktest.Pool(t)
	in := networktest.Start(t, pool)
	f := newNetworkFixture(t, network.Config{
		Pool: pool, DNS: []netip.AddrPort{in.DNS},
		Allowlist: []string{"web.test", "*.wild.test", "metadata.test", "loopback.test"},
	})
	return f, in
}

// startListening starts a sandbox serving "hello from <name>" on port 8000 of all its
// addresses, and waits until it listens.
func startListening(t *testing.T, f *fixture, name string, policy anyops.NetworkPolicy) *Sandbox {
	t.Helper()
	spec := f.spec(t, fmt.Sprintf(`exec python3 -c '
import socket
s = socket.socket(); s.bind(("0.0.0.0", 8000)); s.listen(8); print("listening", flush=True)
while True:
    c, _ = s.accept(); c.send(b"hello from %s\n"); c.close()'`, name))
	spec.Network = policy
	sb, err := f.m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Destroy() })
	if !collect(sb.PTY()).waitFor("listening", 20*time.Second) {
		t.Fatalf("sandbox %s never listened", name)
	}
	return sb
}

// expect checks every "label: state" line, naming the policy in failures.
func expect(t *testing.T, policy anyops.NetworkPolicy, out string, want map[string]string) {
	t.Helper()
	for label, w := range want {
		if !strings.Contains(out, "\n"+label+": "+w) && !strings.HasPrefix(out, label+": "+w) {
			t.Errorf("%s: want %q, got:\n%s", policy, label+": "+w, out)
		}
	}
}

func addrString(a netip.Addr) string { return a.String() }

// A paid (internet) sandbox reaches a public address directly and by name (through the DNS
// relay), and never the metadata service (IPv4 or IPv6), a private-range server, any address
// of the host (the stand-in for sandboxd's port), nor another sandbox or its relay.
func TestNetworkInternetReachesThePublicOnly(t *testing.T) {
	f, in := netFixture(t)
	port := hostListener(t)
	other := startListening(t, f, "neighbour", anyops.NetworkInternet)
	// The neighbour does listen: the host (not a sandbox) reaches it.
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(other.Link().SandboxAddr(), 8000).String(), 3*time.Second); err != nil {
		t.Fatalf("the host cannot reach the neighbour's listener: %v", err)
	} else {
		c.Close()
	}

	spec := f.spec(t, "")
	spec.Network = anyops.NetworkInternet
	targets := [][3]string{
		{"web", addrString(in.Web), "80"},
		{"web-by-name", "web.test", "80"},
		{"metadata", addrString(in.Metadata), "80"},
		{"metadata-v6", "fd00:ec2::254", "80"},
		{"private", addrString(in.Private), "80"},
		{"neighbour", addrString(other.Link().SandboxAddr()), "8000"},
		{"neighbour-relay", addrString(other.Link().HostAddr()), "53"},
		{"internet-gateway", addrString(in.Gateway), fmt.Sprint(port)},
	}
	addrs := hostAddresses(t)
	targets = append(targets, hostProbes(addrs, port)...)
	spec.Command = []string{"/bin/sh", "-c", probes(targets, `
dns("relay", [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0])
print("interfaces:", sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]))
print("ipv6:", open("/proc/net/if_inet6").read().split())`)}
	r := f.run(t, spec, 60*time.Second)
	// Its own gateway is one of the host's addresses, so it is probed too.
	want := map[string]string{
		"web": "open hello from web", "web-by-name": "open hello from web", "relay": "open",
		"metadata": "closed", "metadata-v6": "closed", "private": "closed",
		"neighbour": "closed", "neighbour-relay": "closed", "internet-gateway": "closed",
		"interfaces": "['eth0', 'lo']",
	}
	for _, a := range addrs {
		want["host-"+a.String()] = "closed"
	}
	expect(t, anyops.NetworkInternet, r.out, want)
	if !strings.Contains(r.out, "ipv6: ['00000000000000000000000000000001',") {
		t.Errorf("the sandbox has IPv6 addresses beyond loopback:\n%s", r.out)
	}
}

// A free (proxy) sandbox reaches allowlisted hosts through the proxy, by http and by CONNECT;
// the proxy refuses hosts off the list, other ports, and allowlisted names that resolve to the
// metadata service or loopback; nothing goes direct: not the web, not DNS, not the host, not
// another sandbox.
func TestNetworkProxyReachesTheAllowlistOnly(t *testing.T) {
	f, in := netFixture(t)
	port := hostListener(t)
	other := startListening(t, f, "neighbour", anyops.NetworkProxy)
	spec := f.spec(t, "")
	spec.Network = anyops.NetworkProxy
	targets := [][3]string{
		{"direct-web", addrString(in.Web), "80"},
		{"metadata", addrString(in.Metadata), "80"},
		{"neighbour", addrString(other.Link().SandboxAddr()), "8000"},
		{"neighbour-proxy", addrString(other.Link().HostAddr()), fmt.Sprint(network.ProxyPort)},
	}
	addrs := hostAddresses(t)
	targets = append(targets, hostProbes(addrs, port)...)
	spec.Command = []string{"/bin/sh", "-c", probes(targets, `
dns("direct-dns", "`+addrString(in.DNS.Addr())+`")
proxy = os.environ["http_proxy"]
print("proxy-env:", proxy)
def get(label, url):
    try:
        print(label + ": ok", urllib.request.urlopen(url, timeout=5).read().decode().strip())
    except urllib.error.HTTPError as e:
        print(label + ": refused", e.code, e.read().decode().strip())
    except OSError as e:
        print(label + ": failed", e)
def connect(label, host):
    p = urllib.parse.urlsplit(proxy)
    c = http.client.HTTPConnection(p.hostname, p.port, timeout=5)
    c.set_tunnel(host, 443)
    try:
        c.request("GET", "/")
        print(label + ": ok", c.getresponse().read().decode().strip())
    except OSError as e:
        print(label + ": refused", e)
get("http-allowed", "http://web.test/")
get("http-wildcard", "http://a.wild.test/")
get("http-off-list", "http://other.test/")
get("http-port", "http://web.test:8080/")
get("http-metadata-name", "http://metadata.test/")
get("http-loopback-name", "http://loopback.test/")
connect("connect-allowed", "web.test")
connect("connect-off-list", "other.test")
connect("connect-metadata-name", "metadata.test")
try:
    socket.getaddrinfo("web.test", 80)
    print("resolve: ok")
except OSError as e:
    print("resolve: failed", e.errno)`)}
	r := f.run(t, spec, 60*time.Second)
	want := map[string]string{
		"direct-web":            "closed",
		"direct-dns":            "closed",
		"metadata":              "closed",
		"neighbour":             "closed",
		"neighbour-proxy":       "closed",
		"http-allowed":          "ok hello from web",
		"http-wildcard":         "ok hello from web",
		"http-off-list":         `refused 403 host "other.test" is not on this proxy's allowlist`,
		"http-port":             "refused 403 port 8080 is not allowed",
		"http-metadata-name":    "refused 403 address 169.254.169.254 is not reachable through this proxy",
		"http-loopback-name":    "refused 403 address 127.0.0.1 is not reachable through this proxy",
		"connect-allowed":       "ok hello from web",
		"connect-off-list":      "refused Tunnel connection failed: 403",
		"connect-metadata-name": "refused Tunnel connection failed: 403",
		"resolve":               "failed",
	}
	for _, a := range addrs {
		want["host-"+a.String()] = "closed"
	}
	expect(t, anyops.NetworkProxy, r.out, want)
	if !strings.Contains(r.out, "proxy-env: http://10.") || !strings.Contains(r.out, fmt.Sprintf(":%d\n", network.ProxyPort)) {
		t.Errorf("no proxy in the environment:\n%s", r.out)
	}
}

// A tarpit (proxy-throttled) sandbox is a proxy sandbox whose veth is shaped both ways: the
// allowlist holds as for free, and both ends carry a token bucket at the configured rate.
func TestNetworkThrottledIsAProxyAtATrickle(t *testing.T) {
	f, _ := netFixture(t)
	out := startProbe(t, f, anyops.NetworkProxyThrottled, probes(nil, `
def get(label, url):
    try:
        print(label + ": ok", urllib.request.urlopen(url, timeout=10).read().decode().strip())
    except urllib.error.HTTPError as e:
        print(label + ": refused", e.code)
get("http-allowed", "http://web.test/")
get("http-off-list", "http://other.test/")
print("done", flush=True)
import time; time.sleep(60)`))
	if !out.output.waitFor("done", 30*time.Second) {
		t.Fatalf("no probe result:\n%s", out.output.String())
	}
	text := strings.ReplaceAll(out.output.String(), "\r\n", "\n")
	expect(t, anyops.NetworkProxyThrottled, text, map[string]string{"http-allowed": "ok hello from web", "http-off-list": "refused 403"})

	rate := uint64(f.m.Network().Config().ThrottleBytesPerSecond)
	hostEnd, err := netlink.LinkByName(out.sb.Link().HostInterface())
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.GetFromPid(out.sb.Pid())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	inner, err := h.LinkByName(network.SandboxInterface)
	if err != nil {
		t.Fatal(err)
	}
	for side, list := range map[string]func() ([]netlink.Qdisc, error){
		"host end":    func() ([]netlink.Qdisc, error) { return netlink.QdiscList(hostEnd) },
		"sandbox end": func() ([]netlink.Qdisc, error) { return h.QdiscList(inner) },
	} {
		qdiscs, err := list()
		if err != nil {
			t.Fatal(err)
		}
		shaped := false
		for _, q := range qdiscs {
			if tbf, ok := q.(*netlink.Tbf); ok && tbf.Rate == rate {
				shaped = true
			}
		}
		if !shaped {
			t.Errorf("%s of the tarpit's link has no token bucket at %d B/s: %+v", side, rate, qdiscs)
		}
	}
}

// probe is a running sandbox and its terminal.
type probe struct {
	sb     *Sandbox
	output *output
}

func startProbe(t *testing.T, f *fixture, policy anyops.NetworkPolicy, script string) probe {
	t.Helper()
	spec := f.spec(t, script)
	spec.Network = policy
	sb, err := f.m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Destroy() })
	return probe{sb, collect(sb.PTY())}
}

// An anonymous (none) sandbox has loopback and nothing else: no interface beyond lo, no host,
// no internet, no metadata service; loopback itself works.
func TestNetworkNoneHasLoopbackOnly(t *testing.T) {
	f, in := netFixture(t)
	port := hostListener(t)
	addrs := hostAddresses(t)
	targets := append([][3]string{
		{"web", addrString(in.Web), "80"},
		{"metadata", addrString(in.Metadata), "80"},
		{"loopback-host-port", "127.0.0.1", fmt.Sprint(port)},
	}, hostProbes(addrs, port)...)
	spec := f.spec(t, probes(targets, `
import threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
threading.Thread(target=lambda: s.accept()[0].send(b"lo-ok")).start()
c = socket.create_connection(s.getsockname()); print("loopback:", c.recv(10).decode())
print("interfaces:", sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]))`))
	r := f.run(t, spec, 60*time.Second)
	want := map[string]string{"web": "closed", "metadata": "closed", "loopback-host-port": "closed", "loopback": "lo-ok", "interfaces": "['lo']"}
	for _, a := range addrs {
		want["host-"+a.String()] = "closed"
	}
	expect(t, anyops.NetworkNone, r.out, want)
}

// Destroy removes a sandbox's link: the proxy's listener at once, the host-side interface soon
// after.
func TestNetworkLinkGoesWithItsSandbox(t *testing.T) {
	f, _ := netFixture(t)
	p := startProbe(t, f, anyops.NetworkProxy, "sleep 60")
	link := p.sb.Link()
	if _, err := netlink.LinkByName(link.HostInterface()); err != nil {
		t.Fatalf("no host-side link while the sandbox runs: %v", err)
	}
	proxyAddr := netip.AddrPortFrom(link.HostAddr(), network.ProxyPort)
	if !listening(t, proxyAddr) {
		t.Fatalf("no proxy listening on %s while the sandbox runs", proxyAddr)
	}
	if err := p.sb.Destroy(); err != nil {
		t.Fatal(err)
	}
	// The veth pair is deleted in the background (deleting a link waits for the kernel's RCU
	// grace periods); Manager.Close waits for it, a test polls.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := netlink.LinkByName(link.HostInterface()); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s outlived its sandbox", link.HostInterface())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if listening(t, proxyAddr) {
		t.Errorf("the proxy of a destroyed sandbox still listens on %s", proxyAddr)
	}
}

// listening reports whether a TCP socket of the host listens on ap (IPv4), from /proc/net/tcp:
// a connect would not tell, since a host's uplink may answer for any address.
func listening(t *testing.T, ap netip.AddrPort) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	a := ap.Addr().As4()
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], ap.Port())
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && f[1] == local && f[3] == "0A" {
			return true
		}
	}
	return false
}
