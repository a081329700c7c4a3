package cloudsim

import (
	"net/http"
	"testing"
)

// TestHeartbleedOnlyARestartMakesTheFixLive proves the model the fleet patch relies on: a web
// server's nginx and a console server's tornado answer the heartbeat check as vulnerable
// until the fixed libssl is installed AND the service restarted (the upgrade alone leaves the
// old library loaded); the three packages of the seeds go to 1.0.1f-1ubuntu2.2; a file server
// serves no TLS; /_sim/hosts/{id} shows the per-service state.
func TestHeartbleedOnlyARestartMakesTheFixLive(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	web := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	console := f.run(t, "us-east-1a", map[string]string{"anyops:role": "console"})
	file := f.run(t, "us-east-1a", map[string]string{"anyops:role": "file"})
	f.sim.Advance(bootTime)
	const upgrade = "apt-get install -y -q --only-upgrade openssl libssl-dev libssl1.0.0"
	f.runSteps(t, []shellStep{
		{web, "heartbleeder localhost:443", 1, "INSECURE - localhost:443 has the heartbeat extension enabled and is vulnerable"},
		{web, "heartbleeder localhost", 1, "INSECURE - localhost:443"},
		{console, "heartbleeder localhost:8888", 1, "INSECURE"},
		{file, "heartbleeder localhost:443", 2, "connection refused"},
		{web, "dpkg-query -W openssl libssl-dev libssl1.0.0", 0, "libssl-dev\t1.0.1f-1ubuntu2\n"},
		{web, "apt-get update", 0, "Reading package lists"},
		{web, upgrade, 0, "3 upgraded"},
		{web, "dpkg-query -W -f '${Version} ' openssl libssl-dev libssl1.0.0", 0, "1.0.1f-1ubuntu2.2 1.0.1f-1ubuntu2.2 1.0.1f-1ubuntu2.2 "},
		{web, "heartbleeder localhost:443", 1, "INSECURE"}, // nginx still has the old library loaded
		{web, "systemctl reload nginx && heartbleeder localhost:443", 1, "INSECURE"},
		{web, "systemctl restart nginx && heartbleeder localhost:443", 0, "SECURE - localhost:443 has heartbeat extension enabled but is not vulnerable"},
		{console, upgrade + " && service tornado restart && heartbleeder localhost:8888", 0, "SECURE"},
	})
	var h struct {
		Packages map[string]string `json:"packages"`
		TLS      []tlsView         `json:"tls"`
	}
	if code := f.getJSON(t, "/_sim/hosts/"+web, &h); code != http.StatusOK || len(h.TLS) != 1 || h.TLS[0].Service != "nginx" ||
		h.TLS[0].Vulnerable || h.TLS[0].Loaded != "1.0.1f-1ubuntu2.2" || h.Packages["libssl-dev"] != "1.0.1f-1ubuntu2.2" {
		t.Fatalf("/_sim/hosts/%s = %d %+v, want nginx fixed with the new libssl loaded", web, code, h)
	}
	if f.getJSON(t, "/_sim/hosts/"+file, &h); len(h.TLS) != 0 {
		t.Fatalf("file server shows TLS services %+v", h.TLS)
	}
}

// TestAptFailureFault proves the apt-failure fault: on the chosen host apt-get update and
// install exit 100 with apt's messages and install nothing, other hosts are unaffected, and
// deleting the fault lets the upgrade through.
func TestAptFailureFault(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	bad := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	good := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	f.sim.Advance(bootTime)
	id := f.injectFault(t, map[string]any{"type": FaultAptFailure, "instance_id": bad})
	const upgrade = "apt-get install -y -q --only-upgrade openssl libssl-dev libssl1.0.0"
	f.runSteps(t, []shellStep{
		{bad, "apt-get update", 100, "E: Some index files failed to download"},
		{bad, upgrade, 100, "E: Unable to fetch some archives"},
		{bad, "dpkg-query -W -f '${Version}' libssl1.0.0", 0, "1.0.1f-1ubuntu2"},
		{good, upgrade, 0, "3 upgraded"},
	})
	if out, _, _, _ := f.shell(t, bad, "dpkg-query -W -f '${Version}' libssl1.0.0"); out != "1.0.1f-1ubuntu2" {
		t.Fatalf("the failed install changed libssl1.0.0 to %q", out)
	}
	req, _ := http.NewRequest(http.MethodDelete, f.url+"/_sim/faults/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE fault: %v %v", resp, err)
	}
	f.runSteps(t, []shellStep{{bad, upgrade, 0, "3 upgraded"}})
	if code, body := f.post(t, "/_sim/faults", "application/json", `{"type":"apt-failure"}`, nil); code != http.StatusBadRequest {
		t.Fatalf("apt-failure without instance_id: %d %s", code, body)
	}
}

// TestRestartedServiceAnswersOnceUp proves a restarted service does not answer while it
// starts: what a drain is for.
func TestRestartedServiceAnswersOnceUp(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	web := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	f.sim.Advance(bootTime)
	f.runSteps(t, []shellStep{{web, "curl -fsS http://localhost/", 0, "ok"}})
	// The restart is sent and not waited for: a probe at the same moment finds nginx starting.
	if _, err := f.ssm.SendCommand(f.ctx, sendShell(web, "systemctl restart nginx")); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code, _ := f.shell(t, web, "curl -fsS http://localhost/"); code != 7 {
		t.Fatalf("probe during the restart: exit %d %s%s, want 7", code, out, stderr)
	}
	f.sim.Advance(serviceRestartTime)
	f.runSteps(t, []shellStep{{web, "curl -fsS http://localhost/", 0, "ok"}})
}
