package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/anyops/anyops/internal/testenv"
)

// fakeMachine is a machine for scripts/test-deps.sh in a directory: a copy of the script in
// a repository layout, a PATH holding only the tools that are "installed", an apt-get that
// records what it is asked and installs what the case allows, and an npm that records too.
type fakeMachine struct {
	t                        *testing.T
	root, bin, chromium, log string
	pglib                    string
}

func newFakeMachine(t *testing.T, tools []string, modulesCurrent bool) *fakeMachine {
	t.Helper()
	// A directory of our own, readable by the unprivileged user of the not-root case.
	root, err := os.MkdirTemp("", "test-deps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o777); err != nil {
		t.Fatal(err)
	}
	m := &fakeMachine{t: t, root: root, bin: filepath.Join(root, "bin"), chromium: filepath.Join(root, "usr-bin-chromium"),
		log: filepath.Join(root, "calls.log"), pglib: filepath.Join(root, "postgresql")}
	src, err := os.ReadFile("test-deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	m.write("repo/scripts/test-deps.sh", string(src), 0o755)
	m.write("repo/web/e2e/package-lock.json", "{}", 0o644)
	if modulesCurrent {
		m.write("repo/web/e2e/node_modules/.package-lock.json", "{}", 0o644)
	}
	m.write("calls.log", "", 0o666)
	// The script runs on the real bash and dirname; everything else it may look for is fake.
	for _, real := range []string{"bash", "dirname"} {
		p, err := exec.LookPath(real)
		if err != nil {
			t.Fatal(err)
		}
		m.link(p, "bin/"+real)
	}
	for _, tool := range tools {
		switch tool {
		case "chromium":
			m.write("usr-bin-chromium", "#!/bin/sh\n", 0o755)
		case "postgresql":
			m.write("postgresql/15/bin/initdb", "#!/bin/sh\n", 0o755)
		case "npm":
			m.write("bin/npm", "#!/bin/bash\necho \"npm $*\" >>"+m.log+"\n", 0o755)
		default:
			m.write("bin/"+tool, "#!/bin/sh\n", 0o755)
		}
	}
	return m
}

// fakeApt makes apt-get record its calls and, on install, create the file that stands for
// each package it is allowed to install (package -> path under the machine's root); asked
// for any other package it fails as apt-get does.
func (m *fakeMachine) fakeApt(installs map[string]string) {
	m.t.Helper()
	apt := "#!/bin/bash\necho \"apt-get $*\" >>" + m.log + "\n[ \"$1\" = install ] || exit 0\nfor p in \"${@:2}\"; do case $p in\n  -*) ;;\n"
	for pkg, rel := range installs {
		path := filepath.Join(m.root, rel)
		apt += "  " + pkg + ") /bin/mkdir -p " + filepath.Dir(path) + " && echo '#!/bin/sh' >" + path + " && /bin/chmod 755 " + path + " ;;\n"
	}
	apt += "  *) echo \"E: Unable to locate package $p\" >&2; exit 100 ;;\nesac; done\n"
	m.write("bin/apt-get", apt, 0o755)
}

func (m *fakeMachine) write(rel, content string, mode os.FileMode) {
	m.t.Helper()
	p := filepath.Join(m.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Chmod(p, mode|0o444); err != nil { // WriteFile's mode is masked by the umask
		m.t.Fatal(err)
	}
}

func (m *fakeMachine) link(target, rel string) {
	m.t.Helper()
	p := filepath.Join(m.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		m.t.Fatal(err)
	}
}

// run runs the script with only the machine's tools on PATH, as uid.
func (m *fakeMachine) run(uid int, env ...string) (calls, output string, err error) {
	m.t.Helper()
	cmd := exec.Command(filepath.Join(m.root, "bin", "bash"), filepath.Join(m.root, "repo", "scripts", "test-deps.sh"))
	cmd.Env = append([]string{"PATH=" + m.bin, "HOME=" + m.root, "CHROMIUM=" + m.chromium, "ANYOPS_POSTGRES_LIB=" + m.pglib}, env...)
	if uid != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	out, err := cmd.CombinedOutput()
	log, rerr := os.ReadFile(m.log)
	if rerr != nil {
		m.t.Fatal(rerr)
	}
	return string(log), string(out), err
}

// TestTestDeps proves the decisions of scripts/test-deps.sh, which `make test` runs first:
// as root it asks apt-get for exactly the missing Debian packages and npm ci for stale
// modules; what it still lacks fails the run with how to get it, unless SKIP_MISSING=1 (and
// CI is not set); without root it installs nothing and says root is missing.
func TestTestDeps(t *testing.T) {
	all := []string{"postgresql", "runuser", "mkfs.btrfs", "mmdebstrap", "chromium", "node", "npm", "curl", "python3", "moto_server"}
	without := func(drop ...string) []string {
		var out []string
		for _, tool := range all {
			keep := true
			for _, d := range drop {
				keep = keep && tool != d
			}
			if keep {
				out = append(out, tool)
			}
		}
		return out
	}
	const notRoot = 65534 // nobody, when the test runs as root
	tests := []struct {
		name           string
		tools          []string
		aptInstalls    map[string]string // package -> the file apt-get creates for it, under the machine root
		modulesCurrent bool
		uid            int
		env            []string
		wantOK         bool
		wantCalls      []string // in order; nil: no calls at all
		wantOutput     []string
	}{
		{name: "everything here: nothing to do", tools: all, modulesCurrent: true, wantOK: true},
		{name: "stale npm modules: npm ci", tools: all, wantOK: true,
			wantCalls: []string{"npm ci --no-audit --no-fund --loglevel=error"}},
		{name: "no chromium: apt-get installs exactly it", tools: without("chromium"), modulesCurrent: true,
			aptInstalls: map[string]string{"chromium": "usr-bin-chromium"}, wantOK: true,
			wantCalls: []string{"apt-get update -qq", "apt-get install -y -qq --no-install-recommends chromium"}},
		{name: "no postgresql, runuser, mkfs.btrfs, mmdebstrap, node or npm: one install of their packages",
			tools: without("postgresql", "runuser", "mkfs.btrfs", "mmdebstrap", "node", "npm"), modulesCurrent: true,
			aptInstalls: map[string]string{"postgresql": "postgresql/15/bin/initdb", "util-linux": "bin/runuser",
				"btrfs-progs": "bin/mkfs.btrfs", "mmdebstrap": "bin/mmdebstrap", "nodejs": "bin/node", "npm": "bin/npm"}, wantOK: true,
			wantCalls: []string{"apt-get update -qq", "apt-get install -y -qq --no-install-recommends postgresql util-linux btrfs-progs mmdebstrap nodejs npm"}},
		{name: "chromium cannot be installed: fails naming it", tools: without("chromium"), modulesCurrent: true,
			wantCalls:  []string{"apt-get update -qq", "apt-get install -y -qq --no-install-recommends chromium"},
			wantOutput: []string{"missing: chromium: apt-get install chromium", "SKIP_MISSING=1 runs without them"}},
		{name: "chromium cannot be installed, SKIP_MISSING=1: runs without it", tools: without("chromium"), modulesCurrent: true,
			env: []string{"SKIP_MISSING=1"}, wantOK: true,
			wantCalls:  []string{"apt-get update -qq", "apt-get install -y -qq --no-install-recommends chromium"},
			wantOutput: []string{"missing: chromium", "SKIP_MISSING=1: running without them"}},
		{name: "CI ignores SKIP_MISSING", tools: without("chromium"), modulesCurrent: true, env: []string{"SKIP_MISSING=1", "CI=true"},
			wantCalls:  []string{"apt-get update -qq", "apt-get install -y -qq --no-install-recommends chromium"},
			wantOutput: []string{"missing: chromium", "CI is set"}},
		{name: "no moto_server: not a Debian package, fails with how to get it", tools: without("moto_server"), modulesCurrent: true,
			wantOutput: []string{"missing: moto_server: pip install 'moto[server]==5.2.1'"}},
		{name: "not root: installs nothing, says so", tools: without("chromium"), modulesCurrent: true, uid: notRoot,
			aptInstalls: map[string]string{"chromium": "usr-bin-chromium"},
			wantOutput:  []string{"missing: chromium: apt-get install chromium (as root)", "missing: root: run make test as root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid := tt.uid
			switch {
			case uid == 0 && os.Geteuid() != 0:
				testenv.RequireRoot(t) // the script installs only as root
			case uid != 0 && os.Geteuid() != 0:
				uid = os.Geteuid() // not root already
			}
			m := newFakeMachine(t, tt.tools, tt.modulesCurrent)
			m.fakeApt(tt.aptInstalls)
			calls, out, err := m.run(uid, tt.env...)
			if (err == nil) != tt.wantOK {
				t.Errorf("exit: %v, want ok=%v\n%s", err, tt.wantOK, out)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(calls), "\n") {
				if l != "" {
					got = append(got, l)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantCalls, "\n") {
				t.Errorf("calls:\n%s\nwant:\n%s\noutput:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantCalls, "\n"), out)
			}
			for _, w := range tt.wantOutput {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
