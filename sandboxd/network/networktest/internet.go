// Package networktest stands up "the internet" for tests of sandboxes' networks: a network
// namespace of its own, joined to the host by a veth pair and routed from it, holding web
// servers, a DNS server and a stand-in for the instance metadata service. It needs root.
package networktest

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/dns/dnsmessage"
)

// Internet is one test's internet. Its addresses come from 198.18.0.0/15 (set aside for
// benchmarking, in no private range), a /28 of it chosen at random and unused on the host.
type Internet struct {
	Web      netip.Addr     // HTTP on ports 80 and 443 (plain HTTP on both) answering "hello from web"
	Other    netip.Addr     // the same, answering "hello from other"
	DNS      netip.AddrPort // answers A queries for Names; NXDOMAIN for the rest
	Metadata netip.Addr     // 169.254.169.254, answering "metadata: secret"
	Private  netip.Addr     // an address of 172.16.0.0/12 (a private range), answering "hello from private"
	Gateway  netip.Addr     // the host's end of the link to it
	// Names are what DNS answers: "web.test" and "*.wild.test" → Web, "other.test" → Other,
	// "metadata.test" → 169.254.169.254, "loopback.test" → 127.0.0.1.
	Names map[string]netip.Addr
}

// Metadata is the instance metadata service's address, served by Start's internet for the
// sources in its pool only: the host's own route to it is left alone.
var Metadata = netip.MustParseAddr("169.254.169.254")

var benchmarking = netip.MustParsePrefix("198.18.0.0/15")

// Pool is a /24 of 10.213.128.0/17 that no host interface uses, for a test's sandboxes.
func Pool(t testing.TB) netip.Prefix {
	t.Helper()
	for range 50 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(128 + randomN(128)), 0}), 24)
		if free, err := unused(p); err != nil {
			t.Fatal(err)
		} else if free {
			return p
		}
	}
	t.Fatal("networktest: no free /24 in 10.213.128.0/17")
	return netip.Prefix{}
}

// Start builds an internet for sandboxes numbered from pool; the test's cleanup removes it.
func Start(t testing.TB, pool netip.Prefix) *Internet {
	t.Helper()
	block, err := freeBlock()
	if err != nil {
		t.Fatal(err)
	}
	at := func(i int) netip.Addr {
		a := block.Addr()
		for range i {
			a = a.Next()
		}
		return a
	}
	private, err := freePrivate()
	if err != nil {
		t.Fatal(err)
	}
	in := &Internet{Gateway: at(1), Web: at(4), Other: at(5), DNS: netip.AddrPortFrom(at(6), 53), Metadata: Metadata, Private: private}
	in.Names = map[string]netip.Addr{
		"web.test": in.Web, "other.test": in.Other, "metadata.test": Metadata,
		"loopback.test": netip.MustParseAddr("127.0.0.1"),
	}
	far := at(2) // the internet's end of the link
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(format string, args ...any) {
		cleanup()
		t.Fatalf("networktest: "+format, args...)
	}

	ns, err := newNamespace()
	if err != nil {
		t.Fatalf("networktest: %v", err)
	}
	cleanups = append(cleanups, func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		fail("netlink in the namespace: %v", err)
	}
	defer h.Close()

	hostName := fmt.Sprintf("aoinet%04x", randomN(1<<16))
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostName}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}); err != nil {
		fail("veth: %v", err)
	}
	cleanups = append(cleanups, func() {
		if l, err := netlink.LinkByName(hostName); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	hostEnd, err := netlink.LinkByName(hostName)
	if err != nil {
		fail("%v", err)
	}
	if err := netlink.AddrAdd(hostEnd, &netlink.Addr{IPNet: prefixNet(in.Gateway, 30)}); err != nil {
		fail("host address: %v", err)
	}
	if err := netlink.LinkSetUp(hostEnd); err != nil {
		fail("%v", err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		fail("%v", err)
	}
	for _, a := range []netip.Addr{in.Web, in.Other, in.DNS.Addr(), Metadata, private} {
		if err := h.AddrAdd(lo, &netlink.Addr{IPNet: prefixNet(a, 32)}); err != nil {
			fail("address %s: %v", a, err)
		}
	}
	if err := h.LinkSetUp(lo); err != nil {
		fail("%v", err)
	}
	farEnd, err := h.LinkByName("eth0")
	if err != nil {
		fail("%v", err)
	}
	if err := h.AddrAdd(farEnd, &netlink.Addr{IPNet: prefixNet(far, 30)}); err != nil {
		fail("%v", err)
	}
	if err := h.LinkSetUp(farEnd); err != nil {
		fail("%v", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: farEnd.Attrs().Index, Gw: in.Gateway.AsSlice()}); err != nil {
		fail("default route inside: %v", err)
	}
	// The host reaches the servers through the link.
	servers := &netlink.Route{LinkIndex: hostEnd.Attrs().Index, Dst: prefixNet(at(4), 30), Gw: far.AsSlice()}
	if err := netlink.RouteAdd(servers); err != nil {
		fail("route to the servers: %v", err)
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: hostEnd.Attrs().Index, Dst: prefixNet(private, 32), Gw: far.AsSlice()}); err != nil {
		fail("route to the private server: %v", err)
	}
	// The metadata address, for the pool's sources only, by a rule of its own.
	table := 10000 + randomN(50000)
	meta := &netlink.Route{LinkIndex: hostEnd.Attrs().Index, Dst: prefixNet(Metadata, 32), Gw: far.AsSlice(), Table: table}
	if err := netlink.RouteAdd(meta); err != nil {
		fail("metadata route: %v", err)
	}
	rule := netlink.NewRule()
	rule.Family = netlink.FAMILY_V4
	rule.Src = prefixNet(pool.Addr(), pool.Bits())
	rule.Dst = prefixNet(Metadata, 32)
	rule.Table = table
	rule.Priority = 1000
	if err := netlink.RuleAdd(rule); err != nil {
		fail("metadata rule: %v", err)
	}
	cleanups = append(cleanups, func() { _ = netlink.RuleDel(rule) })

	var closers []func() error
	err = inNamespace(ns, func() error {
		for _, s := range []struct {
			addr netip.Addr
			name string
		}{{in.Web, "web"}, {in.Other, "other"}, {Metadata, "metadata"}, {private, "private"}} {
			for _, port := range []uint16{80, 443} {
				l, err := net.Listen("tcp", netip.AddrPortFrom(s.addr, port).String())
				if err != nil {
					return err
				}
				srv := &http.Server{Handler: greeter(s.name), ReadHeaderTimeout: 10 * time.Second}
				go func() { _ = srv.Serve(l) }()
				closers = append(closers, srv.Close)
			}
		}
		dns, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(in.DNS))
		if err != nil {
			return err
		}
		go serveDNS(dns, in.Names, in.Web)
		closers = append(closers, dns.Close)
		return nil
	})
	cleanups = append(cleanups, func() {
		for _, c := range closers {
			_ = c()
		}
	})
	if err != nil {
		fail("servers: %v", err)
	}
	t.Cleanup(cleanup)
	return in
}

func greeter(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name == "metadata" {
			fmt.Fprintln(w, "metadata: secret")
			return
		}
		fmt.Fprintf(w, "hello from %s\n", name)
	})
}

// serveDNS answers A questions from names (and *.wild.test with wild), NXDOMAIN otherwise;
// other types get an empty answer.
func serveDNS(c *net.UDPConn, names map[string]netip.Addr, wild netip.Addr) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		hdr, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
		addr, ok := names[name]
		if !ok && strings.HasSuffix(name, ".wild.test") {
			addr, ok = wild, true
		}
		resp := dnsmessage.Header{ID: hdr.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeSuccess}
		if !ok {
			resp.RCode = dnsmessage.RCodeNameError
		}
		b := dnsmessage.NewBuilder(nil, resp)
		_ = b.StartQuestions()
		_ = b.Question(q)
		_ = b.StartAnswers()
		if ok && q.Type == dnsmessage.TypeA && addr.Is4() {
			_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: addr.As4()})
		}
		out, err := b.Finish()
		if err == nil {
			_, _ = c.WriteToUDPAddrPort(out, from)
		}
	}
}

// newNamespace makes a network namespace and returns a handle to it, leaving the calling
// thread where it was.
func newNamespace() (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return 0, err
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		return 0, fmt.Errorf("new network namespace: %w", err)
	}
	if err := netns.Set(orig); err != nil {
		panic("networktest: cannot return to the host's network namespace: " + err.Error())
	}
	return ns, nil
}

// inNamespace runs f on a thread inside ns: sockets it opens belong to ns for good.
func inNamespace(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		panic("networktest: cannot return to the host's network namespace: " + err.Error())
	}
	return ferr
}

// freeBlock picks a /28 of the benchmarking range that no host address or route touches.
func freeBlock() (netip.Prefix, error) {
	for range 50 {
		n := binary.BigEndian.Uint32(benchmarking.Addr().AsSlice()) + uint32(randomN(1<<13))*16
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), 28)
		free, err := unused(p)
		if err != nil {
			return p, err
		}
		if free {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("networktest: no free /28 in 198.18.0.0/15")
}

// freePrivate picks an address of 172.31.0.0/16 that no host address or route touches.
func freePrivate() (netip.Addr, error) {
	for range 50 {
		a := netip.AddrFrom4([4]byte{172, 31, byte(randomN(256)), byte(1 + randomN(254))})
		if free, err := unused(netip.PrefixFrom(a, 32)); err != nil || free {
			return a, err
		}
	}
	return netip.Addr{}, errors.New("networktest: no free address in 172.31.0.0/16")
}

// unused reports whether no host address and no route other than the default overlaps p.
func unused(p netip.Prefix) (bool, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && p.Contains(ip) {
			return false, nil
		}
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, err
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if ip, ok := netip.AddrFromSlice(r.Dst.IP.To4()); ok && ones > 0 && netip.PrefixFrom(ip, ones).Overlaps(p) {
			return false, nil
		}
	}
	return true, nil
}

// TableExists reports whether the host has the nftables table inet name: a daemon's table
// (network.Config.Name) while it runs, and never after.
func TableExists(t testing.TB, name string) bool {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == name {
			return true
		}
	}
	return false
}

func prefixNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

func randomN(n int) int {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return int(binary.BigEndian.Uint32(b[:]) % uint32(n))
}
