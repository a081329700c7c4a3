// Services: systemctl, service, and curl as the health probe of the services behind local ports.

package cloudsim

import (
	"fmt"
	"strings"
	"time"
)

func cmdSystemctl(x *execCtx, args []string, _ string) result {
	var pos []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
		}
	}
	if len(pos) == 1 && pos[0] == "daemon-reload" {
		return ok("")
	}
	if len(pos) != 2 {
		return fail(1, "systemctl: only `systemctl VERB SERVICE` is simulated")
	}
	return x.serviceVerb(pos[0], strings.TrimSuffix(pos[1], ".service"))
}

func cmdService(x *execCtx, args []string, _ string) result {
	if len(args) != 2 {
		return fail(1, "Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]")
	}
	return x.serviceVerb(args[1], args[0])
}

// serviceRestartTime is how long a restarted service takes to answer again.
const serviceRestartTime = 3 * time.Second

func (x *execCtx) serviceVerb(verb, svc string) result {
	state, known := x.h.Services[svc]
	if !known {
		if verb == "is-active" {
			return result{out: "inactive\n", code: 3}
		}
		return fail(5, "Failed to %s %s.service: Unit %s.service not found.", verb, svc, svc)
	}
	switch verb {
	case "restart", "start", "try-restart", "reload-or-restart":
		// A new process: it loads the libraries installed now, and answers once it is up.
		x.h.startService(svc, x.now, serviceRestartTime)
		x.s.event(x.now, "host.service."+verb, x.h.InstanceID, "%s: %s on %s", verb, svc, x.h.Hostname)
		return result{dur: serviceRestartTime}
	case "reload":
		// Same process, new configuration: the loaded libraries stay.
		x.h.Services[svc] = "active"
		x.s.event(x.now, "host.service.reload", x.h.InstanceID, "reload: %s on %s", svc, x.h.Hostname)
		return result{dur: serviceRestartTime}
	case "stop":
		x.h.Services[svc] = "inactive"
		x.s.event(x.now, "host.service.stop", x.h.InstanceID, "%s stopped on %s", svc, x.h.Hostname)
		return result{dur: 2 * time.Second}
	case "is-active":
		if state == "active" {
			return ok("active\n")
		}
		return result{out: state + "\n", code: 3}
	case "status":
		out := fmt.Sprintf("● %s.service\n   Loaded: loaded (/lib/systemd/system/%s.service; enabled)\n   Active: %s", svc, svc, state)
		if state == "active" {
			return ok(out + fmt.Sprintf(" (running) since %s\n", x.h.BootedAt.UTC().Format("Mon 2006-01-02 15:04:05 UTC")))
		}
		return result{out: out + " (dead)\n", code: 3}
	case "enable", "disable", "is-enabled":
		if verb == "is-enabled" {
			return ok("enabled\n")
		}
		return ok("")
	}
	return fail(1, "Unknown operation '%s'.", verb)
}

// cmdCurl is the health probe: http://localhost[:port]/... answers when the service behind
// the port is active.
func cmdCurl(x *execCtx, args []string, _ string) result {
	var url string
	failFlag := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-w" || a == "-m" || a == "--max-time" || a == "-H":
			i++
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--"):
			if strings.Contains(a, "f") {
				failFlag = true
			}
		case a == "--fail":
			failFlag = true
		case strings.HasPrefix(a, "-"):
		default:
			url = a
		}
	}
	_ = failFlag
	rest := strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
	hostPort := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostPort = rest[:i]
	}
	hostName, port := hostPort, "80"
	if i := strings.LastIndexByte(hostPort, ':'); i >= 0 {
		hostName, port = hostPort[:i], hostPort[i+1:]
	}
	if hostName != "localhost" && hostName != "127.0.0.1" && hostName != x.h.Hostname {
		return fail(6, "curl: (6) Could not resolve host: %s", hostName)
	}
	svc := map[string]string{"80": "nginx", "443": "nginx", "8888": "tornado", "8080": "uwsgi", "2049": "nfs-server"}[port]
	if svc == "" || !x.h.serving(svc, x.now) {
		return fail(7, "curl: (7) Failed to connect to %s port %s: Connection refused", hostName, port)
	}
	return ok("ok\n")
}
