package jail

import (
	"maps"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/anyops/anyops"
)

// parseCgroupV1Mounts finds each v1 controller's mount point, including co-mounted
// controllers (cpu,cpuacct), escaped paths, and ignores cgroup2 and other file systems.
func TestParseCgroupV1Mounts(t *testing.T) {
	cases := []struct {
		name      string
		mountinfo string
		want      map[string]string
	}{
		{
			name: "one hierarchy per controller, as on the console hosts",
			mountinfo: `22 27 0:21 / /proc rw,relatime - proc proc rw
30 29 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 29 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 29 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
38 29 0:34 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
39 29 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`,
			want: map[string]string{"cpu": "/sys/fs/cgroup/cpu", "memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"},
		},
		{
			name:      "co-mounted controllers and optional fields",
			mountinfo: "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct\n",
			want:      map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct"},
		},
		{
			name:      "escaped space in the mount point",
			mountinfo: `40 29 0:36 / /cg\040root/memory rw - cgroup cgroup rw,memory` + "\n",
			want:      map[string]string{"memory": "/cg root/memory"},
		},
		{
			name:      "pure cgroup v2 host",
			mountinfo: "25 23 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
			want:      map[string]string{},
		},
		{
			name:      "truncated lines are skipped",
			mountinfo: "30 29 0:26 / /x - cgroup\n31 29\n-\n",
			want:      map[string]string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCgroupV1Mounts(strings.NewReader(tc.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// The parser never panics on any mountinfo and reports only controller names.
func FuzzParseCgroupV1Mounts(f *testing.F) {
	f.Add("30 29 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n")
	f.Add(`40 29 0:36 / /a\040b rw - cgroup cgroup rw,memory` + "\n")
	f.Add("- - - - - - - cgroup x y\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseCgroupV1Mounts(strings.NewReader(s))
		if err != nil {
			return
		}
		for c := range got {
			if !isControllerName(c) {
				t.Fatalf("reported %q as a controller", c)
			}
		}
	})
}

// cpu.shares map onto cpu.weight keeping the plans' order, within v2's [1, 10000].
func TestSharesToWeight(t *testing.T) {
	for _, tc := range []struct{ shares, weight int }{
		{2, 1}, {150, 6}, {300, 12}, {700, 27}, {1024, 39}, {262144, 10000}, {0, 1}, {1 << 30, 10000},
	} {
		if got := sharesToWeight(tc.shares); got != tc.weight {
			t.Errorf("sharesToWeight(%d) = %d, want %d", tc.shares, got, tc.weight)
		}
	}
}

// Zero limits write nothing (unlimited); v1 writes the memory limit before memsw.
func TestCgroupLimitWrites(t *testing.T) {
	if w := cgroupLimitWrites(false, anyops.Limits{}); len(w) != 0 {
		t.Errorf("zero limits wrote %v", w)
	}
	v1 := cgroupLimitWrites(false, anyops.PlanLimits(anyops.PlanAnonymous))
	want := []limitWrite{{"memory.limit_in_bytes", "268435456"}, {"memory.memsw.limit_in_bytes", "268435456"}, {"pids.max", "64"}, {"cpu.shares", "150"}}
	if len(v1) != len(want) {
		t.Fatalf("v1 writes %v, want %v", v1, want)
	}
	for i := range want {
		if v1[i] != want[i] {
			t.Fatalf("v1 writes %v, want %v", v1, want)
		}
	}
	v2 := cgroupLimitWrites(true, anyops.PlanLimits(anyops.PlanTarpit))
	want = []limitWrite{{"memory.max", "134217728"}, {"memory.swap.max", "0"}, {"pids.max", "32"}, {"cpu.weight", "1"}}
	for i := range want {
		if i >= len(v2) || v2[i] != want[i] {
			t.Fatalf("v2 writes %v, want %v", v2, want)
		}
	}
}

// The seccomp filter assembles on this architecture, and every jump of it lands inside it on a
// return: the kernel would refuse it otherwise, and the init would fail every start.
func TestSeccompFiltersAssemble(t *testing.T) {
	filters, err := seccompFilters()
	if err != nil {
		t.Fatal(err)
	}
	if len(filters) != 1 {
		t.Fatalf("%d filters, want the compiled policy alone", len(filters))
	}
	for fi, f := range filters {
		if len(f) == 0 || len(f) > 4096 {
			t.Fatalf("filter %d has %d instructions", fi, len(f))
		}
		if last := f[len(f)-1]; last.Code&0x07 != unix.BPF_RET {
			t.Errorf("filter %d does not end in a return", fi)
		}
		for i, in := range f {
			if in.Code&0x07 == unix.BPF_JMP && in.Code != unix.BPF_JMP|unix.BPF_JA {
				for _, off := range []uint8{in.Jt, in.Jf} {
					if i+1+int(off) >= len(f) {
						t.Errorf("filter %d instruction %d jumps past the end", fi, i)
					}
				}
			}
		}
	}
}

// NewManager refuses cgroup parents that could escape the hierarchy.
func TestNewManagerRejectsBadCgroupParent(t *testing.T) {
	for _, parent := range []string{"/abs", "../up", "a/../b", "a//b", "./a", "a/"} {
		if _, err := NewManager(Config{StateDir: t.TempDir(), CgroupParent: parent}); anyops.ErrorCode(err) != anyops.EINVALID {
			t.Errorf("CgroupParent %q: error %v, want EINVALID", parent, err)
		}
	}
	if _, err := NewManager(Config{}); anyops.ErrorCode(err) != anyops.EINVALID {
		t.Errorf("empty StateDir: error %v, want EINVALID", err)
	}
}
