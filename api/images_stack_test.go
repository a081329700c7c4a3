package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
)

// TestPinnedUserKeepsTheImagePackages is image pinning end to end, on the whole stack with a
// real sandboxd: two images built with mmdebstrap from different packages (version 1 with
// hello, version 2 with tree) are on the console host. A user created while version 1 is
// the default sees exactly version 1's packages, at version 1's versions, inside her console
// after version 2 becomes the default; a user created after that, and an anonymous visitor,
// get version 2; PUT /v1/users/{name}/image moves her. A default the console host cannot
// start is refused with 409 and changes nothing.
func TestPinnedUserKeepsTheImagePackages(t *testing.T) {
	v1, v2 := imagestest.Pinned(t)
	st := newConsoleStack(t, stackOptions{timing: fastTiming()})
	st.startWorker()
	ctx := context.Background()
	cache := imagestest.Store(t)
	manifest := func(img images.Image) map[string]string {
		m, err := cache.Manifest(img)
		if err != nil {
			t.Fatal(err)
		}
		return m.Packages
	}
	v1Packages, v2Packages := manifest(v1), manifest(v2)
	if v1Packages["hello"] == "" || v1Packages["tree"] != "" || v2Packages["tree"] == "" || v2Packages["hello"] != "" {
		t.Fatalf("the two versions do not differ as the test needs: v1 %v, v2 %v", v1Packages, v2Packages)
	}

	setDefault := func(img images.Image, want int) {
		t.Helper()
		body := fmt.Sprintf(`{"name":%q,"version":%q}`, img.Name, img.Version)
		if rec := st.do("PUT", "/v1/images/default", operatorToken, body, ""); rec.Code != want {
			t.Fatalf("PUT /v1/images/default %s = %d %s, want %d", img.Ref(), rec.Code, rec.Body, want)
		}
	}
	setDefault(v1, http.StatusOK)
	alice, err := st.store.CreateUser(ctx, "alice", anyops.PlanFree, false)
	if err != nil || alice.Image == nil || alice.Image.Ref() != v1.Ref() {
		t.Fatalf("alice = %+v, %v; want her pinned to %s", alice.Image, err, v1.Ref())
	}
	if rec := st.do("PUT", "/v1/images/default", viewerToken, `{"name":"x","version":"1"}`, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("viewer setting the default = %d, want 403", rec.Code)
	}
	setDefault(images.Image{Name: v1.Name, Version: "3"}, http.StatusConflict) // not on the host
	if def, err := st.store.DefaultImage(ctx); err != nil || def.Ref() != v1.Ref() {
		t.Fatalf("default after a refused change = %+v, %v; want %s", def, err, v1.Ref())
	}
	if _, err := st.store.GetImage(ctx, v1.Name, "3"); anyops.ErrorCode(err) != anyops.ENOTFOUND {
		t.Fatalf("a refused default was recorded: %v", err)
	}

	setDefault(v2, http.StatusOK)
	bob, err := st.store.CreateUser(ctx, "bob", anyops.PlanFree, false)
	if err != nil || bob.Image == nil || bob.Image.Ref() != v2.Ref() {
		t.Fatalf("bob = %+v, %v; want him pinned to the new default %s", bob.Image, err, v2.Ref())
	}
	rec := st.do("GET", "/v1/users/alice", viewerToken, "", "")
	if u := decode[inventory.User](t, rec); u.Image == nil || u.Image.Ref() != v1.Ref() {
		t.Fatalf("alice after %s became the default = %s, want still on %s", v2.Ref(), rec.Body, v1.Ref())
	}

	if got := st.consolePackages(`{"user":"alice","command":"bash"}`, operatorToken); !maps.Equal(got, v1Packages) {
		t.Errorf("alice's console shows packages %v,\nwant exactly version 1's %v", got, v1Packages)
	}
	if got := st.consolePackages(`{"user":"bob","command":"bash"}`, operatorToken); !maps.Equal(got, v2Packages) {
		t.Errorf("bob's console shows packages %v,\nwant exactly version 2's %v", got, v2Packages)
	}
	if got := st.consolePackages(`{"command":"bash"}`, ""); !maps.Equal(got, v2Packages) {
		t.Errorf("an anonymous console shows packages %v,\nwant the default's %v", got, v2Packages)
	}
	body := fmt.Sprintf(`{"name":%q,"version":%q}`, v2.Name, v2.Version)
	if rec := st.do("PUT", "/v1/users/alice/image", operatorToken, body, ""); rec.Code != http.StatusOK {
		t.Fatalf("moving alice = %d %s", rec.Code, rec.Body)
	}
	if got := st.consolePackages(`{"user":"alice","command":"bash"}`, operatorToken); !maps.Equal(got, v2Packages) {
		t.Errorf("alice's console after the move shows packages %v,\nwant version 2's %v", got, v2Packages)
	}
}

// consolePackages opens a console (body of POST /v1/consoles; token "" for an anonymous one),
// asks dpkg inside it for every installed package and its version, closes it, and returns
// what dpkg answered.
func (st *consoleStack) consolePackages(body, token string) map[string]string {
	st.t.Helper()
	rec := st.do("POST", "/v1/consoles", token, body, "192.0.2.40")
	if rec.Code != http.StatusCreated {
		st.t.Fatalf("POST /v1/consoles %s = %d %s", body, rec.Code, rec.Body)
	}
	con := decode[ConsoleResponse](st.t, rec)
	defer st.close(con)
	tm := attachTerminal(st.t, con.AttachURL)
	// The quotes keep the echo of the typed line from matching the markers.
	tm.send(`printf '%s\n' '--''BEGIN'; dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n'; printf '%s\n' '--''END'` + "\n")
	tm.waitOutput("--END\r\n")
	tm.mu.Lock()
	out := tm.out.String()
	tm.mu.Unlock()
	_, list, _ := strings.Cut(out, "--BEGIN\r\n")
	list, _, _ = strings.Cut(list, "--END\r\n")
	pkgs := map[string]string{}
	for _, line := range strings.Split(list, "\r\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "ii" {
			pkgs[f[1]] = f[2]
		}
	}
	return pkgs
}
