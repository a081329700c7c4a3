package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
	sbtoken "github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/workflows"
)

// TestConsoleOpenAttachClose proves the console's whole life on real parts: an anonymous POST
// returns once the sandbox runs, the attach URL reaches its shell, the console token reads it
// back with a fresh attach URL that replays the earlier output, and DELETE destroys the
// sandbox and removes the throw-away user.
func TestConsoleOpenAttachClose(t *testing.T) {
	for _, driver := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(driver, func(t *testing.T) { testConsoleOpenAttachClose(t, driver) })
	}
}

func testConsoleOpenAttachClose(t *testing.T, driver string) {
	st := newConsoleStack(t, stackOptions{driver: driver, timing: fastTiming()})
	st.startWorker()

	con := st.open(`{"command":"bash"}`, "192.0.2.10")
	if con.ID == "" || con.AttachURL == "" || con.Token == "" || con.ExpiresAt == nil || con.SandboxID == "" {
		t.Fatalf("POST /v1/consoles answered %+v, want id, attach_url, token, expires_at and sandbox", con)
	}
	if sb, err := st.sbc.Get(context.Background(), con.SandboxID); err != nil || sb.State != "running" || sb.Plan != anyops.PlanAnonymous || sb.Network != anyops.NetworkNone {
		t.Fatalf("sandbox of the new console: %+v %v, want running, anonymous plan, network none", sb, err)
	}
	user, err := st.store.GetUser(context.Background(), con.User)
	if err != nil || !user.Anonymous {
		t.Fatalf("console user %q: %+v %v, want an anonymous user in the inventory", con.User, user, err)
	}

	tm := attachTerminal(t, con.AttachURL)
	tm.send("echo hi-$((6*7))\n") // the shell computes 42: the echo of the input cannot match
	tm.waitOutput("hi-42")

	// The page after a reload: the console token gets a fresh attach URL; scrollback replays.
	rec := st.do("GET", "/v1/consoles/"+con.ID+"?token="+con.Token, "", "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET console with its token = %d %s", rec.Code, rec.Body)
	}
	again := decode[ConsoleResponse](t, rec)
	if again.State != anyops.ConsoleOpen || again.AttachURL == "" {
		t.Fatalf("GET console = %+v, want open with an attach URL", again)
	}
	attachTerminal(t, again.AttachURL).waitOutput("hi-42")

	// Another console's token, or none, reads nothing.
	for _, tok := range []string{"", "1.AAAA", st.server.consoles.consoleToken("00000000-0000-0000-0000-000000000000", time.Now().Add(time.Hour))} {
		if rec := st.do("GET", "/v1/consoles/"+con.ID+"?token="+tok, "", "", ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("GET console with token %q = %d, want 401", tok, rec.Code)
		}
	}

	st.close(con)
	st.sandboxGone(con.SandboxID)
	if _, err := st.store.GetUser(context.Background(), con.User); anyops.ErrorCode(err) != anyops.ENOTFOUND {
		t.Errorf("anonymous user after close: %v, want removed", err)
	}
	if res := st.workflowResult(con.ID, 10*time.Second); res.EndReason != workflows.ConsoleEndClosed {
		t.Errorf("workflow ended with %q, want %q", res.EndReason, workflows.ConsoleEndClosed)
	}
}

// TestRegisteredUserConsole proves an operator opens a console for a registered user: the
// user's plan and pinned image, the host's network; closing keeps the user.
func TestRegisteredUserConsole(t *testing.T) {
	st := newConsoleStack(t, stackOptions{timing: fastTiming()})
	st.startWorker()
	ctx := context.Background()
	user, err := st.store.CreateUser(ctx, "alice", anyops.PlanPaid, false)
	if err != nil || user.Image == nil {
		t.Fatalf("create user: %+v %v, want one pinned to an image", user, err)
	}
	rec := st.do("POST", "/v1/consoles", operatorToken, `{"user":"alice","command":"python3"}`, "")
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST for alice = %d %s", rec.Code, rec.Body)
	}
	con := decode[ConsoleResponse](t, rec)
	sb, err := st.sbc.Get(ctx, con.SandboxID)
	if err != nil || sb.User != "alice" || sb.UID != user.UID || sb.Plan != anyops.PlanPaid || sb.Network != anyops.NetworkInternet ||
		sb.Image != user.Image.Name+":"+user.Image.Version {
		t.Fatalf("alice's sandbox = %+v %v, want her uid, plan, pinned image and the paid plan's network (internet)", sb, err)
	}
	if rec := st.do("GET", "/v1/consoles?user=alice", viewerToken, "", ""); !strings.Contains(rec.Body.String(), con.ID) {
		t.Fatalf("GET /v1/consoles?user=alice = %d %s, want the console", rec.Code, rec.Body)
	}
	if rec := st.do("DELETE", "/v1/consoles/"+con.ID, viewerToken, "", ""); rec.Code != http.StatusForbidden {
		t.Fatalf("viewer closing = %d, want 403", rec.Code)
	}
	if rec := st.do("DELETE", "/v1/consoles/"+con.ID, operatorToken, "", ""); rec.Code != http.StatusOK {
		t.Fatalf("operator closing = %d %s", rec.Code, rec.Body)
	}
	st.sandboxGone(con.SandboxID)
	if _, err := st.store.GetUser(ctx, "alice"); err != nil {
		t.Fatalf("alice after her console closed: %v, want kept", err)
	}
	if c, _ := st.store.GetConsole(ctx, con.ID); c.State != anyops.ConsoleClosed {
		t.Fatalf("console row = %+v, want closed", c)
	}
}

// TestConsoleIdleTimeoutEndsIt proves a console nobody uses ends by itself after the idle
// timeout, and its sandbox with it.
func TestConsoleIdleTimeoutEndsIt(t *testing.T) {
	timing := fastTiming()
	timing.IdleTimeout = 2 * time.Second
	st := newConsoleStack(t, stackOptions{timing: timing})
	st.startWorker()
	con := st.open("", "192.0.2.11")
	if res := st.workflowResult(con.ID, 30*time.Second); res.EndReason != workflows.ConsoleEndIdle {
		t.Fatalf("workflow ended with %q, want %q", res.EndReason, workflows.ConsoleEndIdle)
	}
	st.sandboxGone(con.SandboxID)
}

// TestConsolesSurviveWorkerKill proves kill -9 of the worker loses no console: after a new
// worker starts, each workflow still tracks its running sandbox, and closing each destroys it.
func TestConsolesSurviveWorkerKill(t *testing.T) {
	st := newConsoleStack(t, stackOptions{timing: fastTiming()})
	first := st.startWorkerProcess()
	cons := []ConsoleResponse{st.open("", "192.0.2.20"), st.open("", "192.0.2.21"), st.open("", "192.0.2.22")}

	first.kill()
	time.Sleep(2 * time.Second) // host checks come due while no worker runs
	st.startWorkerProcess()

	for _, con := range cons {
		v := st.view(con.ID)
		if v.Phase != "open" || v.SandboxID != con.SandboxID {
			t.Fatalf("console %s after the worker's restart: %+v, want open on sandbox %s", con.ID, v, con.SandboxID)
		}
		if sb, err := st.sbc.Get(context.Background(), con.SandboxID); err != nil || sb.State != "running" {
			t.Fatalf("sandbox %s after the worker's restart: %+v %v, want running", con.SandboxID, sb, err)
		}
	}
	for _, con := range cons {
		st.close(con)
		st.sandboxGone(con.SandboxID)
	}
}

// TestKillSwitch proves the operator's switch: off, the public status says not accepting and
// POST /v1/consoles is 503 with Retry-After and creates nothing; on again, consoles start.
func TestKillSwitch(t *testing.T) {
	st := newConsoleStack(t, stackOptions{timing: fastTiming()})
	st.startWorker()
	status := func() PublicStatus {
		rec := st.do("GET", "/v1/status", "", "", "")
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /v1/status = %d %s", rec.Code, rec.Body)
		}
		return decode[PublicStatus](t, rec)
	}
	if s := status(); !s.AcceptingConsoles || s.Capacity != 6 {
		t.Fatalf("status before = %+v, want accepting with the sandboxd's 6 slots", s)
	}
	if rec := st.do("POST", "/v1/admin/consoles/accepting", operatorToken, `{"accepting":false}`, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("operator flipping the switch = %d, want 403", rec.Code)
	}
	if rec := st.do("POST", "/v1/admin/consoles/accepting", adminToken, `{"accepting":"no"}`, ""); rec.Code != http.StatusBadRequest {
		t.Fatalf("bad switch body = %d, want 400", rec.Code)
	}
	if rec := st.do("POST", "/v1/admin/consoles/accepting", adminToken, `{"accepting":false}`, ""); rec.Code != http.StatusOK {
		t.Fatalf("switch off = %d %s", rec.Code, rec.Body)
	}
	if s := status(); s.AcceptingConsoles {
		t.Fatalf("status with the switch off = %+v, want not accepting", s)
	}
	usersBefore := countUsers(t, st.store)
	// Another API replica on the same inventory, and this one, both refuse.
	replica := New(Deps{Store: st.store, Temporal: st.tc, Auth: st.server.deps.Auth, Logger: st.server.log, ConsolesEnabled: true,
		Consoles: ConsoleDeps{SandboxdKey: st.key, TaskQueue: st.queue}})
	for name, h := range map[string]http.Handler{"this replica": st.handler, "another replica": replica.Handler()} {
		req := httptest.NewRequest("POST", "/v1/consoles", nil)
		req.RemoteAddr = "192.0.2.30:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%s: POST with the switch off = %d (Retry-After %q), want 503 with Retry-After", name, rec.Code, rec.Header().Get("Retry-After"))
		}
		if got := decode[ErrorBody](t, rec).Error.Code; got != anyops.EUNAVAILABLE {
			t.Errorf("%s: error code %q, want %q", name, got, anyops.EUNAVAILABLE)
		}
	}
	if got := countUsers(t, st.store); got != usersBefore {
		t.Errorf("a refused POST changed the users from %d to %d", usersBefore, got)
	}
	st.do("POST", "/v1/admin/consoles/accepting", adminToken, `{"accepting":true}`, "")
	if s := status(); !s.AcceptingConsoles {
		t.Fatalf("status with the switch on again = %+v", s)
	}
	st.close(st.open("", "192.0.2.30"))
}

// TestAnonymousFloodIsRateLimited proves a flood of anonymous creations from one address gets
// 429 with Retry-After after its burst, while another address is still served.
func TestAnonymousFloodIsRateLimited(t *testing.T) {
	st := newConsoleStack(t, stackOptions{timing: fastTiming(), admission: AdmissionConfig{PerClientEvery: time.Hour, PerClientBurst: 2}})
	st.startWorker()
	var opened []ConsoleResponse
	for range 2 {
		opened = append(opened, st.open("", "198.51.100.7"))
	}
	for range 3 {
		rec := st.do("POST", "/v1/consoles", "", "", "198.51.100.7")
		if rec.Code != http.StatusTooManyRequests {
			t.Fatalf("flood request = %d %s, want 429", rec.Code, rec.Body)
		}
		if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("429 Retry-After = %q, want whole seconds", rec.Header().Get("Retry-After"))
		}
	}
	opened = append(opened, st.open("", "203.0.113.9"))
	for _, con := range opened {
		st.close(con)
	}
}

// TestConsoleRequestsRejected proves bad console requests get 4xx JSON errors and start nothing.
func TestConsoleRequestsRejected(t *testing.T) {
	st := newConsoleStack(t, stackOptions{timing: fastTiming()})
	usersBefore := countUsers(t, st.store)
	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"unknown command", "POST", "/v1/consoles", "", `{"command":"rm"}`, 400},
		{"unknown field", "POST", "/v1/consoles", "", `{"shell":"bash"}`, 400},
		{"malformed JSON", "POST", "/v1/consoles", "", `{`, 400},
		{"user without a token", "POST", "/v1/consoles", "", `{"user":"alice"}`, 401},
		{"viewer may not open for a user", "POST", "/v1/consoles", viewerToken, `{"user":"alice"}`, 403},
		{"operator without user", "POST", "/v1/consoles", operatorToken, `{}`, 400},
		{"operator for an unknown user", "POST", "/v1/consoles", operatorToken, `{"user":"nobody"}`, 404},
		{"list needs a token", "GET", "/v1/consoles", "", "", 401},
		{"get a console id that is not one", "GET", "/v1/consoles/x", viewerToken, "", 404},
		{"get an unknown console", "GET", "/v1/consoles/00000000-0000-0000-0000-000000000000", viewerToken, "", 404},
		{"delete without token", "DELETE", "/v1/consoles/00000000-0000-0000-0000-000000000000", "", "", 401},
		{"move image of unknown user", "PUT", "/v1/users/nobody/image", operatorToken, `{"name":"host","version":"1"}`, 404},
		{"move image without version", "PUT", "/v1/users/nobody/image", operatorToken, `{"name":"host"}`, 400},
		{"default image without version", "PUT", "/v1/images/default", operatorToken, `{"name":"python"}`, 400},
		{"default image by a viewer", "PUT", "/v1/images/default", viewerToken, `{"name":"python","version":"1"}`, 403},
		{"default image with an unknown field", "PUT", "/v1/images/default", operatorToken, `{"name":"python","version":"1","force":true}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := st.do(tt.method, tt.path, tt.token, tt.body, "")
			if rec.Code != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.want)
			}
			if decode[ErrorBody](t, rec).Error.Code == "" {
				t.Fatalf("error without a code: %s", rec.Body)
			}
		})
	}
	if got := countUsers(t, st.store); got != usersBefore {
		t.Errorf("rejected requests changed the users from %d to %d", usersBefore, got)
	}
}

// TestUserImagePinning proves new users get the default image, keep it when another becomes
// the default, and move only when asked through the API; GET /v1/images marks the default.
// (TestPinnedUserKeepsTheImagePackages proves it inside consoles, with real images.)
func TestUserImagePinning(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	ctx := context.Background()
	for _, v := range []string{"2026.1", "2026.2"} {
		if _, err := f.store.AddImage(ctx, "python", v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.SetDefaultImage(ctx, "python", "2026.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateUser(ctx, "alice", anyops.PlanFree, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.SetDefaultImage(ctx, "python", "2026.2"); err != nil {
		t.Fatal(err)
	}
	pinned := func() string {
		rec := f.do("GET", "/v1/users/alice", viewerToken, "")
		u := decode[inventory.User](t, rec)
		if u.Image == nil {
			t.Fatalf("user has no image: %s", rec.Body)
		}
		return u.Image.Version
	}
	if got := pinned(); got != "2026.1" {
		t.Fatalf("existing user after a new default = %s, want kept on 2026.1", got)
	}
	rec := f.do("GET", "/v1/images", viewerToken, "")
	defaults := map[string]bool{}
	for _, img := range decode[List[inventory.Image]](t, rec).Items {
		defaults[img.Version] = img.Default
	}
	if len(defaults) != 2 || defaults["2026.1"] || !defaults["2026.2"] {
		t.Fatalf("GET /v1/images = %s, want both versions, 2026.2 the default", rec.Body)
	}
	if rec := f.do("PUT", "/v1/users/alice/image", viewerToken, `{"name":"python","version":"2026.2"}`); rec.Code != 403 {
		t.Fatalf("viewer moving a user = %d, want 403", rec.Code)
	}
	if rec := f.do("PUT", "/v1/users/alice/image", operatorToken, `{"name":"python","version":"2099.9"}`); rec.Code != 404 {
		t.Fatalf("moving to an unknown image = %d, want 404", rec.Code)
	}
	if rec := f.do("PUT", "/v1/users/alice/image", operatorToken, `{"name":"python","version":"2026.2"}`); rec.Code != 200 {
		t.Fatalf("moving a user = %d %s", rec.Code, rec.Body)
	}
	if got := pinned(); got != "2026.2" {
		t.Fatalf("user after the move = %s, want 2026.2", got)
	}
	if u, _ := f.store.CreateUser(ctx, "bob", anyops.PlanFree, false); u.Image == nil || u.Image.Version != "2026.2" {
		t.Fatalf("new user = %+v, want the default image", u.Image)
	}
	// Without the sandboxd key there are no console hosts to check a default against.
	if rec := f.do("PUT", "/v1/images/default", operatorToken, `{"name":"python","version":"2026.1"}`); rec.Code != 503 {
		t.Fatalf("PUT /v1/images/default with consoles unconfigured = %d %s, want 503", rec.Code, rec.Body)
	}
}

func countUsers(t *testing.T, store *inventory.Store) int {
	t.Helper()
	users, _, err := store.ListUsers(context.Background(), inventory.UserFilter{Page: inventory.Page{Limit: inventory.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	return len(users)
}

// TestClientAddr proves X-Forwarded-For is believed only from trusted proxies, and then only
// up to the first hop that is not one.
func TestClientAddr(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct client", "198.51.100.1:5000", "", "198.51.100.1"},
		{"untrusted peer's XFF is ignored", "198.51.100.1:5000", "1.2.3.4", "198.51.100.1"},
		{"trusted proxy: the hop it saw", "10.1.2.3:5000", "1.2.3.4", "1.2.3.4"},
		{"spoofed left entries are skipped", "10.1.2.3:5000", "6.6.6.6, 1.2.3.4", "1.2.3.4"},
		{"chain of trusted proxies", "10.1.2.3:5000", "1.2.3.4, 192.168.1.1", "1.2.3.4"},
		{"malformed hop stops the walk", "10.1.2.3:5000", "garbage", "10.1.2.3"},
		{"IPv6 client", "[2001:db8::1]:5000", "", "2001:db8::1"},
		{"IPv4-mapped peer", "[::ffff:198.51.100.1]:5000", "", "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := ClientAddr(r, trusted); got != tt.want {
				t.Fatalf("ClientAddr = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}

// TestAdmissionLimits proves the per-client limit refuses one address without using up
// another's, the global limit refuses everyone, and refusals say when to retry.
func TestAdmissionLimits(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := newAdmission(AdmissionConfig{PerClientEvery: time.Minute, PerClientBurst: 2, GlobalPerSecond: 1, GlobalBurst: 3, MaxClients: 2})
	for i := range 2 {
		if r := a.admitAnonymous("a", now); r != nil {
			t.Fatalf("request %d from a refused: %v", i, r.err)
		}
	}
	r := a.admitAnonymous("a", now)
	if r == nil || r.err.Code != anyops.ERATELIMITED || r.retryAfter <= 0 || r.retryAfter > time.Minute {
		t.Fatalf("third request from a = %+v, want rate limited with a retry within a minute", r)
	}
	if r := a.admitAnonymous("b", now); r != nil {
		t.Fatalf("first request from b refused: %v", r.err)
	}
	// The global bucket (3) is now empty: a new address is refused too.
	if r := a.admitAnonymous("c", now); r == nil {
		t.Fatal("request beyond the global burst admitted")
	}
	// MaxClients 2: a third address evicted older limiters instead of growing the map.
	if n := len(a.clients); n > 2 {
		t.Errorf("%d client limiters kept, want at most 2", n)
	}
	if r := a.admitAnonymous("a", now.Add(time.Minute)); r != nil {
		t.Errorf("a after a minute refused: %v", r.err)
	}
}

// TestConsoleToken proves console tokens are bound to their console and expire.
func TestConsoleToken(t *testing.T) {
	cs := &consoleService{tokenKeys: [][]byte{[]byte("k")}}
	now := time.Now()
	tok := cs.consoleToken("id-1", now.Add(time.Minute))
	tests := []struct {
		name, id, tok string
		at            time.Time
		want          bool
	}{
		{"its console", "id-1", tok, now, true},
		{"another console", "id-2", tok, now, false},
		{"expired", "id-1", tok, now.Add(2 * time.Minute), false},
		{"tampered expiry", "id-1", "9999999999" + tok[len(tok)-44:], now, false},
		{"empty", "id-1", "", now, false},
		{"no dot", "id-1", "abc", now, false},
	}
	for _, tt := range tests {
		if got := cs.validConsoleToken(tt.id, tt.tok, tt.at); got != tt.want {
			t.Errorf("%s: valid = %v, want %v", tt.name, got, tt.want)
		}
	}
	other := &consoleService{tokenKeys: [][]byte{[]byte("other")}}
	if other.validConsoleToken("id-1", tok, now) {
		t.Error("a token of another key was accepted")
	}
	// After a key rotation the API signs with the new key and still accepts the retired
	// one's tokens: open consoles keep working.
	rotated := &consoleService{tokenKeys: [][]byte{[]byte("new"), []byte("k")}}
	if !rotated.validConsoleToken("id-1", tok, now) {
		t.Error("a console token of the retired key was refused after the rotation")
	}
	if next := rotated.consoleToken("id-1", now.Add(time.Minute)); cs.validConsoleToken("id-1", next, now) {
		t.Error("after the rotation tokens are still signed with the retired key")
	}
}

// TestConsolePageServed proves the API serves the console page, its assets with the types a
// browser needs (module scripts must be JavaScript), the embed snippet, and nothing else.
func TestConsolePageServed(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	tests := []struct {
		path, wantType string
		want           int
	}{
		{"/console", "text/html", 200},
		{"/console/assets/console.js", "javascript", 200},
		{"/console/assets/vendor/xterm.mjs", "javascript", 200},
		{"/console/assets/vendor/xterm.css", "text/css", 200},
		{"/embed/anyops-embed.js", "javascript", 200},
		{"/embed/demo.html", "text/html", 200},
		{"/console/assets/", "application/json", 404},
		{"/console/assets/vendor", "application/json", 404},
		{"/console/assets/nothing.js", "application/json", 404},
		{"/console/assets/../../api/consoles.go", "application/json", 404},
	}
	for _, tt := range tests {
		rec := f.do("GET", tt.path, "", "")
		if rec.Code != tt.want || !strings.Contains(rec.Header().Get("Content-Type"), tt.wantType) {
			t.Errorf("GET %s = %d %q, want %d %s", tt.path, rec.Code, rec.Header().Get("Content-Type"), tt.want, tt.wantType)
		}
	}
}

// TestAdmissionEvictsOlderHalf proves that when the limiter map is full and no client has been
// idle long enough to forget, the least recently seen half goes — even when last-seen times
// bunch up, where halving the time range would drop almost everyone or almost no one.
func TestAdmissionEvictsOlderHalf(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := newAdmission(AdmissionConfig{PerClientEvery: time.Hour, PerClientBurst: 5, GlobalPerSecond: 1000, GlobalBurst: 1000, MaxClients: 10})
	// Nine clients seen within a second, one long before: the time range's midpoint would
	// keep all nine and drop only one.
	a.admitAnonymous("old", now)
	for i := range 9 {
		a.admitAnonymous(fmt.Sprintf("c%d", i), now.Add(10*time.Minute+time.Duration(i)*time.Millisecond))
	}
	a.mu.Lock()
	a.evictLocked(now.Add(11 * time.Minute))
	kept := len(a.clients)
	_, oldKept := a.clients["old"]
	a.mu.Unlock()
	if kept > 5 || kept < 4 || oldKept {
		t.Fatalf("kept %d limiters (old kept: %v), want the newest half", kept, oldKept)
	}
}

// TestRateKey proves anonymous rate limits key an IPv6 client by its /64 (every address of
// one subscriber's network is one client) and an IPv4 client by its address.
func TestRateKey(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"198.51.100.7", "198.51.100.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::ffff:198.51.100.7", "::ffff:198.51.100.7"}, // ClientAddr unmaps it before
		{"not-an-ip", "not-an-ip"},
	}
	for _, tt := range tests {
		if got := RateKey(tt.addr); got != tt.want {
			t.Errorf("RateKey(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	// One /64 is one client: its second address finds the bucket its first emptied.
	now := time.Unix(1_700_000_000, 0)
	a := newAdmission(AdmissionConfig{PerClientEvery: time.Hour, PerClientBurst: 1})
	if r := a.admitAnonymous("2001:db8:1:2::1", now); r != nil {
		t.Fatalf("first address refused: %v", r.err)
	}
	if r := a.admitAnonymous("2001:db8:1:2::9999", now); r == nil {
		t.Fatal("another address of the same /64 was admitted on a fresh bucket")
	}
	if r := a.admitAnonymous("2001:db8:1:3::1", now); r != nil {
		t.Fatalf("the next /64 refused: %v", r.err)
	}
}

// TestKillSwitchFailsClosed proves the switch reads "not accepting" when its state cannot be
// read — before any read, and after it read "on" — and reads the inventory again next time.
func TestKillSwitchFailsClosed(t *testing.T) {
	store, _ := openDemoInventory(t, inventory.DriverSQLite)
	ks := &killSwitch{store: store, ttl: time.Nanosecond, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	if !ks.accepting(ctx) {
		t.Fatal("no decision recorded: want accepting")
	}
	_ = store.Close() // the inventory breaks
	time.Sleep(time.Millisecond)
	if ks.accepting(ctx) {
		t.Fatal("kill switch unreadable after reading on: accepting, want not accepting")
	}
	broken := &killSwitch{store: store, ttl: time.Minute, log: slog.New(slog.DiscardHandler)}
	if broken.accepting(ctx) {
		t.Fatal("kill switch unreadable from the start: accepting, want not accepting")
	}
	// Through the API: a POST is refused with 503 and Retry-After, as with the switch off.
	f := newFixture(t, inventory.DriverSQLite)
	s := New(Deps{Store: f.store, Temporal: f.tc, Logger: slog.New(slog.DiscardHandler), ConsolesEnabled: true,
		Consoles: ConsoleDeps{SandboxdKey: testSandboxdKey(t)}})
	_ = f.store.Close()
	req := httptest.NewRequest("POST", "/v1/consoles", nil)
	req.RemoteAddr = "192.0.2.40:4000"
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("POST with the inventory down = %d %s, want 503 with Retry-After", rec.Code, rec.Body)
	}
}

func testSandboxdKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := sbtoken.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAnonymousConsolesLeaveNoHome proves 100 anonymous consoles opened and closed through
// the API leave no home directory (nor a ledger entry) on the console host: each home is
// there while its console is open and gone once DELETE has answered.
func TestAnonymousConsolesLeaveNoHome(t *testing.T) {
	st := newConsoleStack(t, stackOptions{timing: fastTiming(),
		admission: AdmissionConfig{PerClientBurst: 1000, GlobalBurst: 1000, GlobalPerSecond: 1000}})
	st.startWorker()
	root := st.sbd.Config.StorageRoot
	const consoles, parallel = 100, 4
	var wg sync.WaitGroup
	next := make(chan int)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rec := st.do("POST", "/v1/consoles", "", "", fmt.Sprintf("192.0.2.%d", i%250+1))
				if rec.Code != http.StatusCreated {
					t.Errorf("console %d: POST = %d %s", i, rec.Code, rec.Body)
					continue
				}
				var con ConsoleResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &con); err != nil {
					t.Error(err)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, con.User)); err != nil {
					t.Errorf("console %d: home of %s while open: %v", i, con.User, err)
				}
				if rec := st.do("DELETE", "/v1/consoles/"+con.ID, con.Token, "", ""); rec.Code != http.StatusOK {
					t.Errorf("console %d: DELETE = %d %s", i, rec.Code, rec.Body)
				}
				if _, err := os.Stat(filepath.Join(root, con.User)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("console %d: home of %s after DELETE: %v, want gone", i, con.User, err)
				}
			}
		}()
	}
	for i := range consoles {
		next <- i
	}
	close(next)
	wg.Wait()
	if left, _ := os.ReadDir(root); len(left) != 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Fatalf("after %d anonymous consoles the storage root holds %v, want nothing", consoles, names)
	}
	if ledger, _ := filepath.Glob(filepath.Join(st.sbd.Config.StateDir, "ephemeral-homes", "*", "*")); len(ledger) != 0 {
		t.Fatalf("ledger entries left: %v", ledger)
	}
}
