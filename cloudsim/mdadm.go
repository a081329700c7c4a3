// md RAID: mdadm and /proc/mdstat.

package cloudsim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

func cmdMdadm(x *execCtx, args []string, _ string) result {
	var mode, md, level string
	var devs []string
	scan := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--assemble" || a == "-A":
			mode = "assemble"
		case a == "--create" || a == "-C":
			mode = "create"
		case a == "--detail" || a == "-D":
			mode = "detail"
		case a == "--stop" || a == "-S":
			mode = "stop"
		case a == "--scan" || a == "-s":
			scan = true
		case strings.HasPrefix(a, "--level="):
			level = strings.TrimPrefix(a, "--level=")
		case a == "--level" || a == "-l":
			if i+1 < len(args) {
				level, i = args[i+1], i+1
			}
		case a == "--raid-devices" || a == "-n":
			i++
		case strings.HasPrefix(a, "--raid-devices="), a == "--run", a == "-R", a == "--force", a == "-f", a == "--verbose", a == "-v":
		case strings.HasPrefix(a, "-"):
			return fail(2, "mdadm: option %s is not simulated", a)
		case md == "" && strings.HasPrefix(a, "/dev/md"):
			md = a
		default:
			devs = append(devs, a)
		}
	}
	h := x.h
	switch mode {
	case "create":
		if md == "" || len(devs) == 0 {
			return fail(2, "mdadm: an md device and member devices must be given")
		}
		if a := h.MD[md]; a != nil && a.Active {
			return fail(2, "mdadm: %s is already in use.", md)
		}
		if r := x.missingDevice(devs); r != nil {
			return *r
		}
		if level == "" {
			level = "0"
		}
		h.MD[md] = &mdArray{Level: "raid" + strings.TrimPrefix(level, "raid"), Devices: x.devNames(devs), Active: true}
		x.s.event(x.now, "md.created", h.InstanceID, "%s created on %s from %s", md, h.Hostname, strings.Join(devs, " "))
		return result{out: fmt.Sprintf("mdadm: array %s started.\n", md), dur: 2 * time.Second}
	case "assemble":
		var names []string
		if scan && md == "" {
			known := map[string]bool{}
			for n := range h.MD {
				known[n] = true
			}
			for n := range x.raidGroupsFromTags() {
				known[n] = true
			}
			names = sortedKeys(known)
		} else {
			names = []string{md}
		}
		var out strings.Builder
		for _, name := range names {
			members := devs
			if len(members) == 0 {
				members = x.raidGroupsFromTags()[name] // the superblocks on the attached members
			}
			a := h.MD[name]
			if a == nil {
				if len(members) == 0 {
					return fail(1, "mdadm: %s not identified in config file.", name)
				}
				if r := x.missingDevice(members); r != nil {
					return *r
				}
				// Members found on disk (created elsewhere): assemble them as a raid0.
				a = &mdArray{Level: "raid0", Devices: x.devNames(members)}
				h.MD[name] = a
			}
			if a.Active {
				if scan && md == "" {
					continue // --scan skips what is already running
				}
				return fail(1, "mdadm: %s is already in use.", name)
			}
			if len(devs) > 0 && !sameSet(x.devNames(devs), a.Devices) {
				return fail(1, "mdadm: %s has no superblock - assembly aborted", devs[0])
			}
			if r := x.missingDevice(a.Devices); r != nil {
				return fail(1, "mdadm: %s assembled from 0 drives - not enough to start the array.", name)
			}
			a.Active = true
			fmt.Fprintf(&out, "mdadm: %s has been started with %d drives.\n", name, len(a.Devices))
			x.s.event(x.now, "md.assembled", h.InstanceID, "%s assembled on %s", name, h.Hostname)
		}
		if out.Len() == 0 {
			return fail(1, "mdadm: No arrays found in config file or automatically")
		}
		return result{out: out.String(), dur: 5 * time.Second}
	case "detail":
		a := h.MD[md]
		if a == nil || !a.Active {
			return fail(1, "mdadm: cannot open %s: No such file or directory", md)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s:\n        Version : 1.2\n     Raid Level : %s\n   Raid Devices : %d\n          State : clean\n\n    Number   Major   Minor   RaidDevice State\n", md, a.Level, len(a.Devices))
		for i, d := range a.Devices {
			fmt.Fprintf(&b, "       %d     202      %3d        %d      active sync   %s\n", i, 80+16*i, i, d)
		}
		return ok(b.String())
	case "stop":
		a := h.MD[md]
		if a == nil || !a.Active {
			return fail(1, "mdadm: error opening %s: No such file or directory", md)
		}
		if _, mounted := x.mountedDevice(md); mounted {
			return fail(1, "mdadm: Cannot get exclusive access to %s:Perhaps a running process, mounted filesystem or active volume group?", md)
		}
		a.Active = false
		return ok(fmt.Sprintf("mdadm: stopped %s\n", md))
	}
	return fail(2, "mdadm: one of --create, --assemble, --detail or --stop is simulated")
}

// raidGroupsFromTags stands in for md superblocks: attached volumes tagged anyops:raid=mdN
// are members of /dev/mdN — through their DRBD device when they back a DRBD resource, as md
// on top of DRBD is built.
func (x *execCtx) raidGroupsFromTags() map[string][]string {
	out := map[string][]string{}
	devs := x.s.devices(x.h)
	for _, dev := range sortedKeys(devs) {
		v := devs[dev]
		g, ok := v.Tags.get(anyops.TagRAID)
		if !ok || g == "" {
			continue
		}
		member := dev
		for _, r := range x.h.DRBD {
			if r.VolumeID == v.ID {
				member = r.device()
			}
		}
		name := "/dev/" + strings.TrimPrefix(g, "/dev/")
		out[name] = append(out[name], member)
	}
	for _, members := range out {
		sort.Strings(members)
	}
	return out
}

func (x *execCtx) mdstat() string {
	var b strings.Builder
	b.WriteString("Personalities : [raid0] [raid1]\n")
	for _, name := range sortedKeys(x.h.MD) {
		a := x.h.MD[name]
		if !a.Active {
			continue
		}
		var members []string
		for i, d := range a.Devices {
			members = append(members, fmt.Sprintf("%s[%d]", strings.TrimPrefix(d, "/dev/"), i))
		}
		fmt.Fprintf(&b, "%s : active %s %s\n\n", strings.TrimPrefix(name, "/dev/"), a.Level, strings.Join(members, " "))
	}
	b.WriteString("unused devices: <none>\n")
	return b.String()
}

// missingDevice checks that md members can be opened: attached volumes, or DRBD devices that
// are up and Primary (a Secondary DRBD device refuses to open).
func (x *execCtx) missingDevice(devs []string) *result {
	have := x.s.devices(x.h)
	for _, d := range devs {
		if _, ok := have[x.devName(d)]; ok {
			continue
		}
		if r := x.drbdByDevice(d); r != nil {
			if r.Role == "Primary" {
				continue
			}
			res := fail(1, "mdadm: cannot open %s: Wrong medium type", d)
			return &res
		}
		res := fail(1, "mdadm: cannot open %s: No such file or directory", d)
		return &res
	}
	return nil
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
