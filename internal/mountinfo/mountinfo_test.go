package mountinfo

import (
	"slices"
	"strings"
	"testing"
)

// parse reads the fields proc(5) documents, with optional fields of any number before the
// separator and the kernel's octal escapes undone; lines it cannot read are left out.
func TestParse(t *testing.T) {
	text := `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 8:1 /usr /srv/images/host\040x/usr ro,nosuid master:1 shared:5 - ext4 /dev/vda ro
36 22 0:5 / /dev rw - devtmpfs udev rw
garbage
37 22 0:6 / /x rw -`
	got := parse(text)
	want := []Mount{
		{ID: "22", Root: "/", Point: "/", FSType: "ext4", Source: "/dev/vda"},
		{ID: "35", Root: "/usr", Point: "/srv/images/host x/usr", FSType: "ext4", Source: "/dev/vda"},
		{ID: "36", Root: "/", Point: "/dev", FSType: "devtmpfs", Source: "udev"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parse =\n%+v\nwant\n%+v", got, want)
	}
}

// Under lists what is mounted strictly below a directory of this process's mount table, not
// the directory itself nor a sibling whose name starts the same.
func TestUnder(t *testing.T) {
	if got := Under("/proc"); len(got) != 0 && !strings.HasPrefix(got[0], "/proc/") {
		t.Fatalf("Under(/proc) = %v", got)
	}
	mounts, err := Read()
	if err != nil || len(mounts) == 0 {
		t.Fatalf("Read = %v, %v", mounts, err)
	}
	for _, p := range Under("/") {
		if p == "/" {
			t.Fatal("Under(/) lists / itself")
		}
	}
}

// No input makes the parser panic, and every mount it returns has a mount point.
func FuzzParse(f *testing.F) {
	f.Add("35 22 8:1 /usr /a\\040b ro master:1 - ext4 /dev/vda ro")
	f.Add("1 2 3 4 5 6 - \\")
	f.Fuzz(func(t *testing.T, text string) {
		for _, m := range parse(text) {
			if m.Point == "" && !strings.Contains(text, " - ") {
				t.Fatalf("mount without a separator: %+v", m)
			}
		}
	})
}
