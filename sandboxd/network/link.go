package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/anyops/anyops"
)

// SandboxInterface is the name of the sandbox's end of its veth pair.
const SandboxInterface = "eth0"

// Link is one sandbox's connection to the host: a /30 of the pool, and once attached, the veth
// pair, its shaping and the services on its host-side address.
type Link struct {
	m        *Manager
	policy   anyops.NetworkPolicy
	slot     int
	lock     *os.File // held while the link owns its /30
	name     string   // host-side interface
	host     netip.Addr
	sandbox  netip.Addr
	services []io.Closer

	closeOnce sync.Once
	closeErr  error
}

// Prepare reserves a /30 for a sandbox under policy, which must not be NetworkNone. Nothing is
// built yet: Attach does that once the sandbox's network namespace exists. Close releases it.
func (m *Manager) Prepare(policy anyops.NetworkPolicy) (*Link, error) {
	if _, ok := policyLetter[policy]; !ok {
		return nil, anyops.Errorf(anyops.EINVALID, "network: policy %q has no link", policy)
	}
	slot, lock, err := m.takeSlot()
	if err != nil {
		return nil, err
	}
	base := m.slotPrefix(slot).Addr()
	return &Link{
		m: m, policy: policy, slot: slot, lock: lock,
		name: m.policyPrefix(policy) + strconv.FormatInt(int64(slot), 16),
		host: base.Next(), sandbox: base.Next().Next(),
	}, nil
}

func (m *Manager) slots() int { return 1 << (30 - m.cfg.Pool.Bits()) }

func (m *Manager) slotPrefix(slot int) netip.Prefix {
	a := m.cfg.Pool.Addr().As4()
	n := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) + uint32(slot)<<2
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), 30)
}

// takeSlot finds the next free /30 after the last one taken: not this manager's, not locked by
// another daemon, and with no address on any host interface.
func (m *Manager) takeSlot() (int, *os.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, nil, anyops.Errorf(anyops.EUNAVAILABLE, "network: shut down")
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 0, nil, fmt.Errorf("network: list addresses: %w", err)
	}
	inUse := map[netip.Prefix]bool{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && m.cfg.Pool.Contains(ip) {
			inUse[netip.PrefixFrom(ip, 30).Masked()] = true
		}
	}
	n := m.slots()
	for i := 0; i < n; i++ {
		slot := (m.next + i) % n
		p := m.slotPrefix(slot)
		if m.used[slot] || inUse[p] {
			continue
		}
		f, err := os.OpenFile(filepath.Join(m.cfg.LockDir, p.Addr().String()), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return 0, nil, fmt.Errorf("network: lock file: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				continue // another daemon's
			}
			return 0, nil, fmt.Errorf("network: lock %s: %w", p, err)
		}
		m.used[slot] = true
		m.next = slot + 1
		return slot, f, nil
	}
	return 0, nil, anyops.Errorf(anyops.EUNAVAILABLE, "network: every /30 of pool %s is in use", m.cfg.Pool)
}

func (m *Manager) releaseSlot(slot int) {
	m.mu.Lock()
	delete(m.used, slot)
	m.mu.Unlock()
}

// Policy is the link's network policy.
func (l *Link) Policy() anyops.NetworkPolicy { return l.policy }

// SandboxAddr is the sandbox's address; HostAddr the host's end of the pair, where the proxy or
// the DNS relay listens.
func (l *Link) SandboxAddr() netip.Addr { return l.sandbox }
func (l *Link) HostAddr() netip.Addr    { return l.host }

// HostInterface is the name of the host-side end of the veth pair.
func (l *Link) HostInterface() string { return l.name }

// Env is what the sandbox's environment needs to use its link: the proxy's address for the
// proxy policies (curl, pip, git, requests and urllib all read it), nothing for internet.
func (l *Link) Env() []string {
	if l.policy == anyops.NetworkInternet {
		return nil
	}
	proxy := "http://" + netip.AddrPortFrom(l.host, ProxyPort).String()
	return []string{
		"http_proxy=" + proxy, "https_proxy=" + proxy, "HTTP_PROXY=" + proxy, "HTTPS_PROXY=" + proxy,
		"no_proxy=localhost,127.0.0.1,::1", "NO_PROXY=localhost,127.0.0.1,::1",
	}
}

// ResolvConf is the sandbox's /etc/resolv.conf: the DNS relay for internet; for the proxy
// policies none at all (names are the proxy's business; a lookup fails at once on the
// sandbox's own loopback rather than waiting on a resolver it cannot reach).
func (l *Link) ResolvConf() string {
	if l.policy == anyops.NetworkInternet {
		return "# sandboxd's DNS relay\nnameserver " + l.host.String() + "\n"
	}
	return NoResolvConf
}

// NoResolvConf is the resolv.conf of a sandbox that has no resolver.
const NoResolvConf = "# no resolver: this sandbox reaches the web through its proxy, if at all\n"

// Attach builds the link for the sandbox whose network namespace is pid's: the veth pair, the
// addresses and the sandbox's default route, the shaping of a throttled link, and the proxy or
// DNS relay on the host's end. On error what was built stays for Close to remove.
func (l *Link) Attach(pid int) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("network: sandbox namespace: %w", err)
	}
	defer ns.Close()
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: l.name, TxQLen: 1000},
		PeerName:  SandboxInterface, PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("network: add veth %s: %w", l.name, err)
	}
	hostEnd := netlink.Link(veth) // LinkAdd has looked its index up
	if hostEnd.Attrs().Index == 0 {
		return fmt.Errorf("network: veth %s has no index", l.name)
	}
	// The host's end takes no IPv6: the kernel drops IPv6 arriving on it before any rule.
	if err := writeSysctl("net/ipv6/conf/"+l.name+"/disable_ipv6", "1"); err != nil {
		return err
	}
	if err := netlink.AddrAdd(hostEnd, &netlink.Addr{IPNet: ipNet(l.host, 30)}); err != nil {
		return fmt.Errorf("network: address %s: %w", l.name, err)
	}
	if err := netlink.LinkSetUp(hostEnd); err != nil {
		return fmt.Errorf("network: up %s: %w", l.name, err)
	}

	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("network: netlink in the sandbox: %w", err)
	}
	defer h.Close()
	inner, err := h.LinkByName(SandboxInterface)
	if err != nil {
		return fmt.Errorf("network: find the sandbox's %s: %w", SandboxInterface, err)
	}
	// No IPv6 link-local address either: the sandbox sees one IPv4 address and nothing else.
	if err := h.LinkSetIP6AddrGenMode(inner, 1 /* IN6_ADDR_GEN_MODE_NONE */); err != nil {
		return fmt.Errorf("network: sandbox's IPv6 addressing: %w", err)
	}
	if err := h.AddrAdd(inner, &netlink.Addr{IPNet: ipNet(l.sandbox, 30)}); err != nil {
		return fmt.Errorf("network: sandbox's address: %w", err)
	}
	if err := h.LinkSetUp(inner); err != nil {
		return fmt.Errorf("network: up the sandbox's %s: %w", SandboxInterface, err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: inner.Attrs().Index, Gw: l.host.AsSlice()}); err != nil {
		return fmt.Errorf("network: sandbox's default route: %w", err)
	}
	if l.policy == anyops.NetworkProxyThrottled {
		rate := uint64(l.m.cfg.ThrottleBytesPerSecond)
		if err := netlink.QdiscAdd(shaper(hostEnd, rate)); err != nil { // towards the sandbox
			return fmt.Errorf("network: shape %s: %w", l.name, err)
		}
		if err := h.QdiscAdd(shaper(inner, rate)); err != nil { // from it
			return fmt.Errorf("network: shape the sandbox's %s: %w", SandboxInterface, err)
		}
	}
	switch l.policy {
	case anyops.NetworkProxy, anyops.NetworkProxyThrottled:
		p, err := l.m.startProxy(netip.AddrPortFrom(l.host, ProxyPort))
		if err != nil {
			return err
		}
		l.services = append(l.services, p)
	case anyops.NetworkInternet:
		d, err := startDNSRelay(netip.AddrPortFrom(l.host, DNSPort), l.m.cfg.DNS, l.m.log)
		if err != nil {
			return err
		}
		l.services = append(l.services, d)
	}
	return nil
}

// shaper is a token bucket at rate bytes/s on link's egress, with a burst of a tenth of a
// second (at least a few full frames) and half a second of queue.
func shaper(link netlink.Link, rate uint64) *netlink.Tbf {
	burst := max(rate/10, 4*1514)
	return &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       rate, Limit: uint32(burst + rate/2), Buffer: netlink.Xmittime(rate, uint32(burst)),
	}
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

// Close stops the link's services at once; in the background it then deletes the veth pair
// (the sandbox's end goes with it; deleting a link waits for RCU grace periods, tens of
// milliseconds on a busy host), forgets the connections tracked for the sandbox's address, and
// only then frees the /30. Manager.Close waits for that. Idempotent.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		for _, s := range l.services {
			if err := s.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
		l.m.releasing.Add(1)
		go func() {
			defer l.m.releasing.Done()
			l.release()
		}()
	})
	return l.closeErr
}

func (l *Link) release() {
	if link, err := netlink.LinkByName(l.name); err == nil {
		if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
			l.m.log.Warn("network: delete link", "link", l.name, "err", err)
		}
	} else if !isNotFound(err) {
		l.m.log.Warn("network: find link", "link", l.name, "err", err)
	}
	// A reply still in flight to the old address must not reach the next sandbox given it.
	if l.policy == anyops.NetworkInternet {
		filter := &netlink.ConntrackFilter{}
		if err := filter.AddIP(netlink.ConntrackOrigSrcIP, l.sandbox.AsSlice()); err == nil {
			_, _ = netlink.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.FAMILY_V4, filter)
		}
	}
	_ = l.lock.Close() // releases the flock
	l.m.releaseSlot(l.slot)
}
