// NFS server: exportfs and /etc/exports.

package cloudsim

import (
	"fmt"
	"strings"
)

func cmdExportfs(x *execCtx, args []string, _ string) result {
	opts := "ro,sync,wdelay,root_squash"
	unexport := false
	var targets []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o" && i+1 < len(args):
			opts, i = args[i+1], i+1
		case a == "-u":
			unexport = true
		case a == "-v", a == "-r", a == "-a", a == "-ra", a == "-ar", a == "-s", a == "-f":
		case strings.HasPrefix(a, "-"):
			return fail(1, "exportfs: option %s is not simulated", a)
		default:
			targets = append(targets, a)
		}
	}
	if len(targets) == 0 {
		return ok(x.exportsList(true))
	}
	for _, t := range targets {
		colon := strings.IndexByte(t, ':')
		if colon < 0 {
			t = "*:" + t
			colon = 1
		}
		path := t[colon+1:]
		if unexport {
			if _, ok := x.h.Exports[t]; !ok {
				return fail(1, "exportfs: Could not find '%s' to unexport.", t)
			}
			delete(x.h.Exports, t)
			x.s.event(x.now, "nfs.unexport", x.h.InstanceID, "%s unexported on %s", t, x.h.Hostname)
			continue
		}
		if !x.underMount(path) {
			return fail(1, "exportfs: Failed to stat %s: No such file or directory", path)
		}
		x.h.Exports[t] = opts
		x.s.event(x.now, "nfs.export", x.h.InstanceID, "%s exported (%s) on %s", t, opts, x.h.Hostname)
	}
	return ok("")
}

// underMount is whether path lies on a mounted data filesystem (not the root disk, not an
// NFS mount: re-exporting NFS is not simulated).
func (x *execCtx) underMount(path string) bool {
	_, m, ok := x.mountOf(path)
	return ok && !m.isNFS()
}

func (x *execCtx) exportsList(verbose bool) string {
	var b strings.Builder
	for _, t := range sortedKeys(x.h.Exports) {
		colon := strings.IndexByte(t, ':')
		if verbose {
			fmt.Fprintf(&b, "%s\t%s(%s)\n", t[colon+1:], t[:colon], x.h.Exports[t])
		} else {
			fmt.Fprintf(&b, "%s %s(%s)\n", t[colon+1:], t[:colon], x.h.Exports[t])
		}
	}
	return b.String()
}
