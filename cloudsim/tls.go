// TLS services: which services link libssl and so keep the library they started with loaded
// until they restart, and heartbleeder, the active Heartbleed check of a TLS endpoint.

package cloudsim

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// sslLibrary is the package whose code a TLS service has loaded.
const sslLibrary = "libssl1.0.0"

// tlsServices are the services that link libssl and serve TLS, by port: nginx on web
// servers (443), tornado, the consoles' HTTPS service, on console servers (8888). Other
// services (nfs-server, cron, ssh: libcrypto only, no TLS heartbeat) are not affected.
var tlsServices = map[string]string{"443": "nginx", "8888": "tornado"}

func linksSSL(svc string) bool { return svc == "nginx" || svc == "tornado" }

// vulnerableSSL is whether a libssl version has the heartbeat bug: every 1.0.1 before 1.0.1g,
// unless it is Ubuntu's patched build.
func vulnerableSSL(version string) bool {
	return strings.HasPrefix(version, "1.0.1") && version != upgradedPackages[sslLibrary] && !strings.HasPrefix(version, "1.0.1g")
}

// startService makes a service active; a TLS service loads the libssl installed now and keeps
// it until it starts again (a package upgrade alone does not make the fix live).
func (h *host) startService(svc string, at time.Time, restartTakes time.Duration) {
	h.Services[svc] = "active"
	if linksSSL(svc) {
		if h.Loaded == nil {
			h.Loaded = map[string]string{}
		}
		h.Loaded[svc] = h.Packages[sslLibrary]
	}
	if restartTakes > 0 {
		if h.StartingUntil == nil {
			h.StartingUntil = map[string]time.Time{}
		}
		h.StartingUntil[svc] = at.Add(restartTakes)
	}
}

// serving is whether a service answers at simulated time at: active, and not still starting.
func (h *host) serving(svc string, at time.Time) bool {
	return h.Services[svc] == "active" && !at.Before(h.StartingUntil[svc])
}

// cmdHeartbleeder is titanous/heartbleeder: `heartbleeder host[:443]` sends a heartbeat
// request with a length longer than its payload. INSECURE (exit 1) when the service behind
// the port still has a vulnerable libssl loaded, SECURE (exit 0) otherwise, exit 2 when it
// cannot connect.
func cmdHeartbleeder(x *execCtx, args []string, _ string) result {
	if len(args) != 1 {
		return result{out: "Usage: heartbleeder host[:443]\n", code: 2}
	}
	target := args[0]
	if !strings.Contains(target, ":") {
		target += ":443"
	}
	hostName, port, err := net.SplitHostPort(target)
	if err != nil {
		return fail(2, "Error connecting to %s: %v", target, err)
	}
	if hostName != "localhost" && hostName != "127.0.0.1" && hostName != x.h.Hostname {
		return fail(2, "Error connecting to %s: dial tcp: lookup %s: no such host", target, hostName)
	}
	svc := tlsServices[port]
	if svc == "" || !x.h.serving(svc, x.now) {
		return fail(2, "Error connecting to %s: dial tcp 127.0.0.1:%s: connect: connection refused", target, port)
	}
	if vulnerableSSL(x.h.Loaded[svc]) {
		return result{out: fmt.Sprintf("INSECURE - %s has the heartbeat extension enabled and is vulnerable\n", target), code: 1}
	}
	return ok(fmt.Sprintf("SECURE - %s has heartbeat extension enabled but is not vulnerable\n"+
		"This error happened while processing the heartbeat (almost certainly a good thing): %q\n", target, "local error: bad record MAC"))
}

// tlsView is the per-host heartbeat state /_sim/hosts/{id} shows: each TLS service's loaded
// libssl and whether a heartbeat would find it vulnerable.
type tlsView struct {
	Service    string `json:"service"`
	Port       string `json:"port"`
	Active     bool   `json:"active"`
	Loaded     string `json:"loaded_libssl,omitempty"`
	Vulnerable bool   `json:"vulnerable"`
}

func (h *host) tlsState() []tlsView {
	var out []tlsView
	for _, port := range sortedKeys(tlsServices) {
		svc := tlsServices[port]
		if _, installed := h.Services[svc]; !installed {
			continue
		}
		active := h.Services[svc] == "active"
		out = append(out, tlsView{Service: svc, Port: port, Active: active, Loaded: h.Loaded[svc], Vulnerable: active && vulnerableSSL(h.Loaded[svc])})
	}
	return out
}
