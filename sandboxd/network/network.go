// Package network connects sandboxes to the host by their plan's network policy. Every sandbox
// has a network namespace of its own (package jail makes it); one under a policy other than
// anyops.NetworkNone also gets a veth pair: "eth0" inside with the sandbox's address, and a
// host-side end named after the policy (<name>-p-<slot>, -t- or -i-) with the host's address
// of the pair. What may cross it is decided on the host, by one nftables table per daemon
// (nft.go) whose rules match those link names, and by the services sandboxd runs on the
// host-side address: the allowlisting HTTP(S) proxy (proxy.go) and the DNS relay (dns.go).
//
//	none             loopback only: no veth at all
//	proxy            TCP to the proxy on its own host-side address, nothing else
//	proxy-throttled  as proxy, with both ends of the veth shaped to Config.ThrottleBytesPerSecond
//	internet         forwarded and masqueraded to anything outside the blocked ranges (the
//	                 private ranges, the metadata service, the pool, loopback, multicast), and
//	                 the DNS relay on its host-side address; never the host itself
//
// Sandboxes have no IPv6: the host drops every IPv6 packet from their links.
//
// Addressing: Config.Pool is cut into /30s, one per running sandbox: the first address is the
// host's end, the second the sandbox's, whose default route points at the first. A slot is
// taken round-robin and held with a lock file in Config.LockDir (shared by every daemon on the
// host, so two daemons with overlapping pools never hand out one /30 twice) and is skipped
// while any host interface carries an address inside it.
package network

import (
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/anyops/anyops"
)

// Ports of the services sandboxd runs on each link's host-side address.
const (
	ProxyPort = 3128
	DNSPort   = 53
)

// Defaults of Config.
var (
	// DefaultPool holds 16384 sandboxes: a /30 each.
	DefaultPool = netip.MustParsePrefix("10.213.0.0/16")
	// DefaultPrivateRanges are RFC 1918, shared address space (RFC 6598), link-local, and IPv6
	// unique-local and link-local: where a platform keeps its own machines.
	DefaultPrivateRanges = mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10")
	// DefaultAllowlist is what free consoles reach through the proxy: Python packages, code
	// hosting, Python's own sites. "*.example.org" allows every name under example.org.
	DefaultAllowlist = []string{
		"pypi.org", "files.pythonhosted.org", "pypi.python.org",
		"www.python.org", "docs.python.org",
		"github.com", "codeload.github.com", "api.github.com", "objects.githubusercontent.com",
		"raw.githubusercontent.com", "gist.githubusercontent.com",
		"gitlab.com", "bitbucket.org",
	}
	// DefaultThrottle is the tarpit's rate each way, in bytes per second.
	DefaultThrottle int64 = 32 << 10
)

// alwaysBlocked is never reachable from a sandbox whatever the private ranges say: the instance
// metadata service in both forms, loopback, "this network", multicast, reserved space.
var alwaysBlocked = mustPrefixes("169.254.169.254/32", "fd00:ec2::254/128", "127.0.0.0/8", "0.0.0.0/8",
	"224.0.0.0/4", "240.0.0.0/4", "::1/128", "::/128", "ff00::/8")

// nat64 is the well-known NAT64 prefix: an address in it stands for the IPv4 address in its
// last 32 bits, and is judged as that one.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Config configures a Manager. The zero value takes every default.
type Config struct {
	// Name tells this daemon's nftables table ("inet <Name>") and links ("<Name>-*") apart from
	// other daemons' on the host: [a-z][a-z0-9]{0,7}. A daemon removes what carries its name
	// at start and at Close. Default "anyops"; see InstanceName.
	Name string
	// Pool is the IPv4 range sandboxes' links are numbered from, in /30s. Default DefaultPool.
	Pool netip.Prefix
	// PrivateRanges are never reached by a sandbox, directly or through the proxy. Default
	// DefaultPrivateRanges. The metadata service, loopback, multicast and the pool are blocked
	// whatever this says.
	PrivateRanges []netip.Prefix
	// Allowlist names the hosts the proxy connects to: exact names, or "*.domain" for every
	// name under domain. Default DefaultAllowlist.
	Allowlist []string
	// Uplink, when set, is the only interface internet traffic may leave by.
	Uplink string
	// DNS are the resolvers the proxy and the DNS relay ask. Default: the nameservers of the
	// host's /etc/resolv.conf.
	DNS []netip.AddrPort
	// ThrottleBytesPerSecond shapes proxy-throttled links, each way. Default DefaultThrottle.
	ThrottleBytesPerSecond int64
	// LockDir holds one lock file per /30 in use, shared by every daemon on the host. Default
	// /run/anyops/network.
	LockDir string
	Logger  *slog.Logger
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// InstanceName turns a daemon's identity (its cgroup parent, say) into a Config.Name: itself
// when it is a valid name, else "n" and seven hex digits of its checksum.
func InstanceName(identity string) string {
	if namePattern.MatchString(identity) {
		return identity
	}
	return fmt.Sprintf("n%07x", crc32.ChecksumIEEE([]byte(identity))&0xfffffff)
}

func (c *Config) setDefaults() error {
	bad := func(format string, args ...any) error {
		return anyops.Errorf(anyops.EINVALID, "network: "+format, args...)
	}
	if c.Name == "" {
		c.Name = "anyops"
	}
	if !namePattern.MatchString(c.Name) {
		return bad("name %q must match %s", c.Name, namePattern)
	}
	if !c.Pool.IsValid() {
		c.Pool = DefaultPool
	}
	c.Pool = c.Pool.Masked()
	if !c.Pool.Addr().Is4() || c.Pool.Bits() > 30 || c.Pool.Bits() < 8 {
		return bad("pool %s must be an IPv4 prefix of /8 to /30", c.Pool)
	}
	if c.PrivateRanges == nil {
		c.PrivateRanges = DefaultPrivateRanges
	}
	if c.Allowlist == nil {
		c.Allowlist = DefaultAllowlist
	}
	if c.Uplink != "" && (len(c.Uplink) > 15 || strings.ContainsAny(c.Uplink, "/ \x00")) {
		return bad("uplink %q is not an interface name", c.Uplink)
	}
	if c.ThrottleBytesPerSecond == 0 {
		c.ThrottleBytesPerSecond = DefaultThrottle
	}
	if c.ThrottleBytesPerSecond < 1024 {
		return bad("throttle must be at least 1024 bytes per second, got %d", c.ThrottleBytesPerSecond)
	}
	if c.DNS == nil {
		c.DNS = hostResolvers("/etc/resolv.conf")
	}
	if c.LockDir == "" {
		c.LockDir = "/run/anyops/network"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// hostResolvers reads the nameservers of a resolv.conf; none (or no file) is what glibc then
// assumes, the local host.
func hostResolvers(path string) []netip.AddrPort {
	var out []netip.AddrPort
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, netip.AddrPortFrom(a, DNSPort))
			}
		}
	}
	if len(out) == 0 {
		out = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53")}
	}
	return out
}

// Manager hands out links and holds the host's rules for them.
type Manager struct {
	cfg      Config
	blocked  []netip.Prefix // PrivateRanges, alwaysBlocked and the pool
	allow    allowlist
	resolver *net.Resolver
	log      *slog.Logger

	mu        sync.Mutex
	used      map[int]bool // slots of this manager's links, until their release is done
	next      int          // where the round-robin search for a free slot starts
	closed    bool
	releasing sync.WaitGroup // links being torn down in the background
}

// New removes what an earlier daemon of the same name left (its table and links), enables IPv4
// forwarding, and installs the table. It needs root and a kernel with nf_tables.
func New(cfg Config) (*Manager, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	allow, err := newAllowlist(cfg.Allowlist)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, allow: allow, log: cfg.Logger, used: map[int]bool{},
		blocked:  append(append(slices.Clone(cfg.PrivateRanges), alwaysBlocked...), cfg.Pool),
		resolver: newResolver(cfg.DNS),
	}
	if err := os.MkdirAll(cfg.LockDir, 0o700); err != nil {
		return nil, fmt.Errorf("network: lock dir: %w", err)
	}
	if n, err := m.removeLeftovers(); err != nil {
		return nil, err
	} else if n > 0 {
		m.log.Warn("removed sandbox links left by an earlier sandboxd", "count", n)
	}
	// Forwarding is what lets internet sandboxes out; the table's forward chain decides what
	// of it passes for sandboxes' links and leaves every other interface's traffic alone.
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return nil, err
	}
	if err := m.installTable(); err != nil {
		_, _ = m.removeLeftovers()
		return nil, err
	}
	return m, nil
}

// Config is the manager's configuration with its defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Close waits for closed links to be torn down, then removes the table and every link still up
// (their sandboxes lose their network).
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.releasing.Wait()
	_, err := m.removeLeftovers()
	return err
}

// linkPrefix starts the name of every host-side link of this manager.
func (m *Manager) linkPrefix() string { return m.cfg.Name + "-" }

// policyPrefix starts the name of every host-side link of policy p: the rules select by it.
func (m *Manager) policyPrefix(p anyops.NetworkPolicy) string {
	return m.linkPrefix() + policyLetter[p] + "-"
}

// policyLetter names a policy in its links' names.
var policyLetter = map[anyops.NetworkPolicy]string{
	anyops.NetworkProxy: "p", anyops.NetworkProxyThrottled: "t", anyops.NetworkInternet: "i",
}

// removeLeftovers deletes this manager's table and links.
func (m *Manager) removeLeftovers() (int, error) { return RemoveLeftovers(m.cfg.Name) }

// RemoveLeftovers deletes the nftables table and every host-side link of the daemon named name
// (Config.Name), returning how many links it removed: what New does at start and Close at the
// end, for tests and benchmarks that end a daemon without Close.
func RemoveLeftovers(name string) (int, error) {
	if !namePattern.MatchString(name) {
		return 0, anyops.Errorf(anyops.EINVALID, "network: name %q must match %s", name, namePattern)
	}
	var errs []error
	if err := deleteTable(name); err != nil {
		errs = append(errs, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return 0, fmt.Errorf("network: list links: %w", err)
	}
	n := 0
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, name+"-") {
			if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("network: delete link %s: %w", l.Attrs().Name, err))
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENOENT)
}

func writeSysctl(name, value string) error {
	p := filepath.Join("/proc/sys", name)
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == value {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("network: set %s: %w", strings.ReplaceAll(name, "/", "."), err)
	}
	return nil
}
