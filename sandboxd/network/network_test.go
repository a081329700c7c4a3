package network

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/network/networktest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The allowlist matches exact names and "*.domain" suffixes, case-insensitively and with or
// without the final dot, and nothing that merely ends like an entry.
func TestAllowlist(t *testing.T) {
	a, err := newAllowlist([]string{"pypi.org", "*.github.io", "Files.PythonHosted.org.", "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"pypi.org": true, "PYPI.ORG": true, "pypi.org.": true, "files.pythonhosted.org": true,
		"user.github.io": true, "a.b.github.io": true, "203.0.113.7": true,
		"github.io": false, "evilpypi.org": false, "pypi.org.evil.com": false, "www.pypi.org": false,
		"": false, ".github.io": false, "x..github.io": false, "203.0.113.8": false,
	} {
		if got := a.allows(host); got != want {
			t.Errorf("allows(%q) = %v, want %v", host, got, want)
		}
	}
	for _, bad := range []string{"*.", "*", "exa mple.org", "-x.org", "a/b", "*.*.org"} {
		if _, err := newAllowlist([]string{bad}); anyops.ErrorCode(err) != anyops.EINVALID {
			t.Errorf("entry %q: %v, want invalid", bad, err)
		}
	}
}

// FuzzAllowlist: whatever the entries and the host, building never panics, an accepted exact
// entry allows itself, and a host the list allows is a valid name or address.
func FuzzAllowlist(f *testing.F) {
	f.Add("pypi.org", "pypi.org")
	f.Add("*.github.io", "x.github.io")
	f.Add("*.github.io", "github.io")
	f.Add("203.0.113.7", "203.0.113.7")
	f.Add("a..b", "a..b")
	f.Fuzz(func(t *testing.T, entry, host string) {
		a, err := newAllowlist([]string{entry})
		if err != nil {
			return
		}
		if e := normalHost(entry); len(a.exact) == 1 && !a.allows(e) {
			t.Fatalf("entry %q does not allow itself", entry)
		}
		if a.allows(host) {
			h := normalHost(host)
			if _, err := netip.ParseAddr(h); err != nil && !validHostName(h) {
				t.Fatalf("entry %q allows %q, which is no host", entry, host)
			}
		}
	})
}

// The guard of the proxy (and the table's blocked ranges) refuses the metadata service in every
// spelling, private ranges, the pool, loopback and the host's own addresses, and lets public
// addresses through.
func TestRefusedAddresses(t *testing.T) {
	m := &Manager{blocked: append(append([]netip.Prefix{}, DefaultPrivateRanges...), append(alwaysBlocked, DefaultPool)...)}
	for addr, refused := range map[string]bool{
		"169.254.169.254": true, "fd00:ec2::254": true, "::ffff:169.254.169.254": true,
		"64:ff9b::a9fe:a9fe": true, // NAT64 of the metadata address
		"10.1.2.3":           true, "172.16.0.1": true, "192.168.1.1": true, "100.64.0.1": true,
		"10.213.0.1": true, "127.0.0.1": true, "::1": true, "0.0.0.0": true, "224.0.0.1": true,
		"fe80::1": true, "fd12::1": true, "255.255.255.255": true,
		"8.8.8.8": false, "2001:4860:4860::8888": false, "64:ff9b::808:808": false, "198.18.0.1": false,
	} {
		if got := m.Refuses(netip.MustParseAddr(addr)); got != refused {
			t.Errorf("Refuses(%s) = %v, want %v", addr, got, refused)
		}
	}
	for _, a := range hostAddrs(t) {
		if !m.Refuses(a) {
			t.Errorf("the host's own address %s is not refused", a)
		}
	}
}

func hostAddrs(t *testing.T) []netip.Addr {
	t.Helper()
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

func TestInstanceName(t *testing.T) {
	for in, want := range map[string]string{"anyops": "anyops", "anyops-test-1a2b": "n", "a/b/c": "n", "x": "x"} {
		got := InstanceName(in)
		if !namePattern.MatchString(got) || (want != "n" && got != want) || (want == "n" && (got[0] != 'n' || len(got) != 8)) {
			t.Errorf("InstanceName(%q) = %q", in, got)
		}
	}
	if InstanceName("anyops-a-1") == InstanceName("anyops-a-2") {
		t.Error("two parents share a name")
	}
}

func TestConfigIsValidated(t *testing.T) {
	for name, c := range map[string]Config{
		"name with a dash":   {Name: "any-ops"},
		"name too long":      {Name: "abcdefghi"},
		"IPv6 pool":          {Pool: netip.MustParsePrefix("fd00::/64")},
		"pool too small":     {Pool: netip.MustParsePrefix("10.0.0.0/31")},
		"bad uplink":         {Uplink: "eth0/evil"},
		"throttle too small": {ThrottleBytesPerSecond: 10},
	} {
		if err := c.setDefaults(); anyops.ErrorCode(err) != anyops.EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func randomName(t *testing.T) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// A daemon that died without Close left its table and links: the next one of the same name
// removes them at start, and its own Close removes what it made.
func TestLeftoversOfAnEarlierDaemonAreRemoved(t *testing.T) {
	testenv.RequireRoot(t)
	name := randomName(t)
	first, err := New(Config{Name: name, Pool: networktest.Pool(t)})
	if err != nil {
		t.Fatal(err)
	}
	_ = first // dies without Close
	stale := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name + "-i-ff"}, PeerName: name + "peer"}
	if err := netlink.LinkAdd(stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = RemoveLeftovers(name) })
	second, err := New(Config{Name: name, Pool: networktest.Pool(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(stale.Name); err == nil {
		t.Errorf("the earlier daemon's link %s survived the next start", stale.Name)
	}
	if !networktest.TableExists(t, name) {
		t.Fatal("no table after New")
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if networktest.TableExists(t, name) {
		t.Error("the table survived Close")
	}
}

// A pool hands out each /30 once, across daemons (the lock files), and again once freed.
func TestPoolSlotsAreExclusiveAndReused(t *testing.T) {
	testenv.RequireRoot(t)
	pool := netip.PrefixFrom(networktest.Pool(t).Addr(), 29) // two /30s
	a, err := New(Config{Name: randomName(t), Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Name: randomName(t), Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l1, err := a.Prepare(anyops.NetworkProxy)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := b.Prepare(anyops.NetworkInternet)
	if err != nil {
		t.Fatal(err)
	}
	if l1.SandboxAddr() == l2.SandboxAddr() {
		t.Fatalf("two daemons handed out %s twice", l1.SandboxAddr())
	}
	if _, err := a.Prepare(anyops.NetworkProxy); anyops.ErrorCode(err) != anyops.EUNAVAILABLE {
		t.Fatalf("a third /30 of a /29: %v, want unavailable", err)
	}
	if _, err := a.Prepare(anyops.NetworkNone); anyops.ErrorCode(err) != anyops.EINVALID {
		t.Fatalf("a link for policy none: %v, want invalid", err)
	}
	freed := l2.SandboxAddr()
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	b.releasing.Wait() // the /30 is freed once its link is gone
	l3, err := a.Prepare(anyops.NetworkProxy)
	if err != nil {
		t.Fatalf("after one was freed: %v", err)
	}
	if l3.SandboxAddr() != freed {
		t.Errorf("got %s, want the freed %s", l3.SandboxAddr(), freed)
	}
	_ = l1.Close()
	_ = l3.Close()
}
