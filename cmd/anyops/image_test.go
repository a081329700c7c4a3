package main

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
)

// TestImageCommands runs `anyops image` as an operator would on a console host, against the
// machine's image cache: building a version that exists returns at once without a rebuild,
// building it with other packages is refused, list shows every image with its package count,
// size and the default, show prints the manifest, default names the default, and bad
// references or unknown images fail with a clear message.
func TestImageCommands(t *testing.T) {
	store, console := imagestest.Console(t)
	v1, _ := imagestest.Pinned(t)
	bin := anyopsBinary(t)
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(append([]string{"image"}, args...), "--store", store.Dir())...)
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("anyops image %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	if out := run(true, "build", v1.Ref(), "--packages", strings.Join(imagestest.PinRecipes[0].Packages, ",")); !strings.Contains(out, "already built, not rebuilt: "+v1.Ref()) {
		t.Errorf("build of an existing image:\n%s", out)
	}
	if out := run(false, "build", v1.Ref(), "--packages", "tree"); !strings.Contains(out, "exists") {
		t.Errorf("build of an existing version with other packages:\n%s", out)
	}
	for _, bad := range [][]string{{"build", "python"}, {"build", "python:1", "--packages", "a,-b"}, {"default", "python"}, {"show", "nope:1"}, {"default", "nope:1"}} {
		if out := run(false, bad...); !strings.HasPrefix(out, "anyops: ") {
			t.Errorf("anyops image %v: %s, want one error line", bad, out)
		}
	}

	list := run(true, "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) < 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME VERSION PACKAGES SIZE CREATED DEFAULT" {
		t.Fatalf("list:\n%s", list)
	}
	m, err := store.Manifest(v1)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		rows[f[0]+":"+f[1]] = f
	}
	if f := rows[v1.Ref()]; len(f) != 5 || f[2] != strconv.Itoa(len(m.Packages)) || f[3] != images.HumanSize(m.SizeBytes) {
		t.Errorf("list row of %s = %v, want %d packages, %s", v1.Ref(), f, len(m.Packages), images.HumanSize(m.SizeBytes))
	}
	if f := rows[console.Ref()]; len(f) != 6 || f[5] != "default" {
		t.Errorf("list row of the default %s = %v", console.Ref(), f)
	}

	var shown images.Manifest
	if err := json.Unmarshal([]byte(run(true, "show", v1.Ref())), &shown); err != nil || shown.Packages["hello"] != m.Packages["hello"] || shown.Name != v1.Name {
		t.Errorf("show %s = %+v, %v", v1.Ref(), shown, err)
	}
	if out := run(true, "default", console.Ref()); strings.TrimSpace(out) != "default image: "+console.Ref() {
		t.Errorf("default: %s", out)
	}
}
