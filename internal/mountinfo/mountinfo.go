// Package mountinfo reads the mount table of this process's mount namespace
// (/proc/self/mountinfo): to never delete through a mount, and to check that a daemon
// leaves the host's mount table as it found it.
package mountinfo

import (
	"fmt"
	"os"
	"strings"
)

// Mount is one line of /proc/self/mountinfo (proc(5)).
type Mount struct {
	ID     string // mount ID: a new mount of the same thing gets a new one
	Root   string // the directory of the filesystem mounted (a bind mount's source)
	Point  string // mount point
	FSType string
	Source string
}

// Read returns the mounts of this process's mount namespace, in the order they were made.
func Read() ([]Mount, error) { return read("/proc/self/mountinfo") }

// ReadProcess returns the mounts of process pid's mount namespace.
func ReadProcess(pid int) ([]Mount, error) { return read(fmt.Sprintf("/proc/%d/mountinfo", pid)) }

func read(file string) ([]Mount, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parse(string(b)), nil
}

func parse(text string) []Mount {
	var out []Mount
	for _, line := range strings.Split(text, "\n") {
		// ID parent major:minor root point options [optional fields...] - fstype source super
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(f) {
			continue
		}
		out = append(out, Mount{ID: f[0], Root: unescape(f[3]), Point: unescape(f[4]), FSType: f[sep+1], Source: unescape(f[sep+2])})
	}
	return out
}

// Under lists the mount points strictly below dir, in the order they were mounted.
func Under(dir string) []string {
	mounts, _ := Read()
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var out []string
	for _, m := range mounts {
		if len(m.Point) > len(prefix) && strings.HasPrefix(m.Point, prefix) {
			out = append(out, m.Point)
		}
	}
	return out
}

// unescape undoes the octal escapes (\040 for a space) the kernel writes in paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}
