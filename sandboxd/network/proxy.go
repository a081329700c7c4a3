package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anyops/anyops"
)

// The proxy of a proxy or proxy-throttled sandbox, on the host's end of its link: a forward
// proxy for http:// URLs and an HTTP CONNECT tunnel for https, both only to hosts on the
// allowlist, on ports 80 and 443, and only to addresses outside the blocked ranges and off the
// host (so an allowlisted name that resolves to the metadata service or a private address
// still gets nowhere). What a refusal looks like:
//
//	403 host "example.com" is not on this proxy's allowlist
//	403 address 169.254.169.254 is not reachable through this proxy
//	403 port 22 is not allowed: only 80 (http) and 443 (https, CONNECT)
//	502 the upstream could not be reached
//
// A plain http request goes to the URL's host whatever its Host header says (no fronting one
// site through another's address). What a CONNECT tunnel carries is TLS the proxy cannot see,
// so a client could still send a different name inside it to the same (allowlisted) address.

const (
	proxyDialTimeout = 15 * time.Second
	maxProxyConns    = 64 // requests and tunnels of one sandbox at once
	httpPort         = "80"
	httpsPort        = "443"
)

// allowlist matches host names: exact ones, and suffixes (from "*.domain").
type allowlist struct {
	exact    map[string]bool
	suffixes []string // ".domain"
}

func newAllowlist(entries []string) (allowlist, error) {
	a := allowlist{exact: map[string]bool{}}
	for _, e := range entries {
		e = normalHost(e)
		if s, ok := strings.CutPrefix(e, "*."); ok {
			if !validHostName(s) {
				return a, anyops.Errorf(anyops.EINVALID, "network: allowlist entry %q is not *.domain", e)
			}
			a.suffixes = append(a.suffixes, "."+s)
			continue
		}
		if _, err := netip.ParseAddr(e); err != nil && !validHostName(e) {
			return a, anyops.Errorf(anyops.EINVALID, "network: allowlist entry %q is neither a host name nor an address", e)
		}
		a.exact[e] = true
	}
	return a, nil
}

func (a allowlist) allows(host string) bool {
	h := normalHost(host)
	if h == "" || a.exact[h] {
		return h != ""
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(h, s) && validHostName(h) {
			return true
		}
	}
	return false
}

func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

// validHostName: dot-separated labels of letters, digits and inner hyphens, 253 bytes at most.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// refusedAddress is the guard's answer for an address no sandbox may reach.
type refusedAddress struct{ addr netip.Addr }

func (e refusedAddress) Error() string {
	return fmt.Sprintf("address %s is not reachable through this proxy", e.addr)
}

// Refuses reports whether a sandbox may not reach addr (directly or through the proxy): a
// blocked range, loopback, link-local, multicast, unspecified, or an address of the host.
func (m *Manager) Refuses(addr netip.Addr) bool { return m.refuse(addr) != nil }

func (m *Manager) refuse(addr netip.Addr) error {
	a := addr.Unmap().WithZone("")
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	if !a.IsValid() || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return refusedAddress{addr}
	}
	for _, p := range m.blocked {
		if p.Contains(a) {
			return refusedAddress{addr}
		}
	}
	local, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("list the host's addresses: %w", err)
	}
	for _, l := range local {
		if n, ok := l.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
				return refusedAddress{addr}
			}
		}
	}
	return nil
}

// newResolver asks servers in turn, from the host.
func newResolver(servers []netip.AddrPort) *net.Resolver {
	var next atomic.Uint32
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		s := servers[int(next.Add(1)-1)%len(servers)]
		return d.DialContext(ctx, network, s.String())
	}}
}

// proxy serves one sandbox.
type proxy struct {
	m         *Manager
	ln        net.Listener
	srv       *http.Server
	dialer    *net.Dialer
	transport *http.Transport
	forward   *httputil.ReverseProxy
	slots     chan struct{}

	mu      sync.Mutex
	tunnels map[net.Conn]struct{}
	closed  bool
}

func (m *Manager) startProxy(addr netip.AddrPort) (*proxy, error) {
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("network: proxy listener: %w", err)
	}
	p := &proxy{m: m, ln: ln, slots: make(chan struct{}, maxProxyConns), tunnels: map[net.Conn]struct{}{}}
	p.dialer = &net.Dialer{Timeout: proxyDialTimeout, Resolver: m.resolver, Control: p.guard}
	p.transport = &http.Transport{
		Proxy: nil, DialContext: p.dialer.DialContext, MaxIdleConns: 8, IdleConnTimeout: 30 * time.Second,
		ResponseHeaderTimeout: time.Minute, TLSHandshakeTimeout: proxyDialTimeout,
	}
	p.forward = &httputil.ReverseProxy{
		// The Host header is the URL's host: no asking an allowlisted address for another site.
		Rewrite:      func(r *httputil.ProxyRequest) { r.Out.Host = "" },
		Transport:    p.transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) { p.refuseDial(w, err) },
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// guard runs before every connect the proxy makes, on the resolved address.
func (p *proxy) guard(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	return p.m.refuse(ap.Addr())
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	default:
		http.Error(w, fmt.Sprintf("this sandbox already has %d connections through the proxy", maxProxyConns), http.StatusServiceUnavailable)
		return
	}
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	if !r.URL.IsAbs() || r.URL.Scheme != "http" {
		http.Error(w, "this is a proxy: send absolute http:// URLs, or CONNECT host:443 for https", http.StatusBadRequest)
		return
	}
	if port := r.URL.Port(); port != "" && port != httpPort {
		p.refusePort(w, port)
		return
	}
	if !p.m.allow.allows(r.URL.Hostname()) {
		p.refuseHost(w, r.URL.Hostname())
		return
	}
	p.forward.ServeHTTP(w, r)
}

func (p *proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		http.Error(w, "CONNECT wants host:port", http.StatusBadRequest)
		return
	}
	if port != httpsPort {
		p.refusePort(w, port)
		return
	}
	if !p.m.allow.allows(host) {
		p.refuseHost(w, host)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), proxyDialTimeout)
	upstream, err := p.dialer.DialContext(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		p.refuseDial(w, err)
		return
	}
	client, buffered, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	if !p.track(client, upstream) {
		return
	}
	defer p.untrack(client, upstream)
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	if n := buffered.Reader.Buffered(); n > 0 { // the client may have sent its hello already
		b, _ := buffered.Reader.Peek(n)
		if _, err := upstream.Write(b); err != nil {
			return
		}
	}
	pipe(client, upstream)
}

// pipe copies both ways until both directions are done, passing on each half-close.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	copyHalf := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	wg.Add(2)
	go copyHalf(a, b)
	go copyHalf(b, a)
	wg.Wait()
}

func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.tunnels[c] = struct{}{}
	}
	return true
}

func (p *proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.tunnels, c)
	}
}

func (p *proxy) refuseHost(w http.ResponseWriter, host string) {
	http.Error(w, fmt.Sprintf("host %q is not on this proxy's allowlist", host), http.StatusForbidden)
}

func (p *proxy) refusePort(w http.ResponseWriter, port string) {
	http.Error(w, fmt.Sprintf("port %s is not allowed: only 80 (http) and 443 (https, CONNECT)", port), http.StatusForbidden)
}

func (p *proxy) refuseDial(w http.ResponseWriter, err error) {
	var refused refusedAddress
	if errors.As(err, &refused) {
		http.Error(w, refused.Error(), http.StatusForbidden)
		return
	}
	p.m.log.Debug("proxy: upstream unreachable", "err", err)
	http.Error(w, "the upstream could not be reached", http.StatusBadGateway)
}

// Close stops the listener and ends every request and tunnel of the sandbox.
func (p *proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.tunnels {
		c.Close()
	}
	p.mu.Unlock()
	err := p.srv.Close()
	p.transport.CloseIdleConnections()
	return err
}
