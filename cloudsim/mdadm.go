// md RAID: mdadm and /proc/mdstat. Arrays are found by the md superblocks `mdadm --create`
// wrote on their members (blockdev.go), so an array travels with its volumes — and, built over
// DRBD devices, with their replicas. Volumes tagged FixtureTagRAID=mdN without superblocks
// stand in for members of arrays made elsewhere (host.go).

package cloudsim

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// mdadmArgs is a parsed mdadm command line.
type mdadmArgs struct {
	mode, md, level string
	raidDevices     int
	devs            []string
	scan, run       bool
}

func parseMdadm(args []string) (mdadmArgs, *result) {
	var m mdadmArgs
	bad := func(format string, a ...any) (mdadmArgs, *result) {
		r := fail(2, format, a...)
		return m, &r
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() string {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				return v
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch {
		case a == "--assemble" || a == "-A":
			m.mode = "assemble"
		case a == "--create" || a == "-C":
			m.mode = "create"
		case a == "--detail" || a == "-D":
			m.mode = "detail"
		case a == "--examine" || a == "-E":
			m.mode = "examine"
		case a == "--stop" || a == "-S":
			m.mode = "stop"
		case a == "--scan" || a == "-s":
			m.scan = true
		case a == "--run" || a == "-R":
			m.run = true
		case a == "--level" || a == "-l" || strings.HasPrefix(a, "--level="):
			m.level = strings.TrimPrefix(val(), "raid")
		case a == "--raid-devices" || a == "-n" || strings.HasPrefix(a, "--raid-devices="):
			v := val()
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return bad("mdadm: invalid number of raid devices: %s", v)
			}
			m.raidDevices = n
		case a == "--metadata" || a == "-e" || strings.HasPrefix(a, "--metadata="):
			if v := val(); v != "1.2" && v != "default" {
				return bad("mdadm: metadata %s is not simulated (1.2 is)", v)
			}
		case a == "--force" || a == "-f" || a == "--verbose" || a == "-v" || a == "--quiet" || a == "-q":
		case strings.HasPrefix(a, "-"):
			return bad("mdadm: option %s is not simulated", a)
		case m.md == "" && strings.HasPrefix(a, "/dev/md"):
			m.md = a
		default:
			m.devs = append(m.devs, a)
		}
	}
	return m, nil
}

func cmdMdadm(x *execCtx, args []string, _ string) result {
	m, bad := parseMdadm(args)
	if bad != nil {
		return *bad
	}
	switch m.mode {
	case "create":
		return x.mdCreate(m)
	case "assemble":
		return x.mdAssemble(m)
	case "examine":
		return x.mdExamine(m.devs)
	case "detail":
		a := x.h.MD[m.md]
		if a == nil || !a.Active {
			return fail(1, "mdadm: cannot open %s: No such file or directory", m.md)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s:\n        Version : 1.2\n     Raid Level : %s\n   Raid Devices : %d\n          State : clean\n           UUID : %s\n\n    Number   Major   Minor   RaidDevice State\n",
			m.md, a.Level, len(a.Devices), a.UUID)
		for i, d := range a.Devices {
			fmt.Fprintf(&b, "       %d     259      %3d        %d      active sync   %s\n", i, i, i, d)
		}
		return ok(b.String())
	case "stop":
		a := x.h.MD[m.md]
		if a == nil || !a.Active {
			return fail(1, "mdadm: error opening %s: No such file or directory", m.md)
		}
		if _, mounted := x.mountedDevice(m.md); mounted {
			return fail(1, "mdadm: Cannot get exclusive access to %s:Perhaps a running process, mounted filesystem or active volume group?", m.md)
		}
		a.Active = false
		x.s.event(x.now, "md.stopped", x.h.InstanceID, "%s stopped on %s", m.md, x.h.Hostname)
		return ok(fmt.Sprintf("mdadm: stopped %s\n", m.md))
	}
	return fail(2, "mdadm: one of --create, --assemble, --examine, --detail or --stop is simulated")
}

// mdCreate writes a superblock on every member and starts the array. A member that already
// holds a superblock or a file system makes mdadm ask for confirmation; with no terminal to
// answer it aborts, unless --run was given.
func (x *execCtx) mdCreate(m mdadmArgs) result {
	h := x.h
	switch {
	case m.md == "" || len(m.devs) == 0:
		return fail(2, "mdadm: an md device and member devices must be given")
	case m.raidDevices > 0 && m.raidDevices < len(m.devs):
		return fail(2, "mdadm: You have listed more devices (%d) than are in the array(%d)!", len(m.devs), m.raidDevices)
	case m.raidDevices > len(m.devs):
		return fail(2, "mdadm: You haven't given enough devices (real or missing) to create this array")
	}
	if a := h.MD[m.md]; a != nil && a.Active {
		return fail(2, "mdadm: %s is already in use.", m.md)
	}
	level := m.level
	if level == "" {
		level = "0"
	}
	if level != "0" && level != "1" {
		return fail(2, "mdadm: raid level %s is not simulated (0 and 1 are)", level)
	}
	var members []blockDev
	var questions strings.Builder
	for _, d := range m.devs {
		bd, why := x.openDevice(d, true)
		if why != "" {
			return fail(1, "mdadm: cannot open %s: %s", d, why)
		}
		switch c := x.content(bd); {
		case c.MD != nil:
			fmt.Fprintf(&questions, "mdadm: %s appears to be part of a raid array:\n       level=raid%s devices=%d name=%s\n", d, strings.TrimPrefix(c.MD.Level, "raid"), c.MD.Devices, c.MD.Name)
		case c.FS != "":
			fmt.Fprintf(&questions, "mdadm: %s appears to contain an %s file system\n", d, c.FS)
		}
		members = append(members, bd)
	}
	if questions.Len() > 0 && !m.run {
		return result{out: questions.String() + "Continue creating array? ", err: "mdadm: create aborted.\n", code: 1}
	}
	uuid := fsUUID(h.InstanceID, m.md, x.now.String())
	a := &mdArray{UUID: uuid, Level: "raid" + level, Active: true}
	for i, bd := range members {
		sb := mdSuper{UUID: uuid, Name: m.md, Level: a.Level, Devices: len(members), Index: i}
		x.write(bd, func(d *blockData) { d.FS, d.MD = "", &sb })
		a.Devices = append(a.Devices, bd.name)
	}
	h.MD[m.md] = a
	x.s.event(x.now, "md.created", h.InstanceID, "%s created on %s from %s", m.md, h.Hostname, strings.Join(a.Devices, " "))
	return result{out: "mdadm: Defaulting to version 1.2 metadata\n" + fmt.Sprintf("mdadm: array %s started.\n", m.md), dur: 2 * time.Second}
}

// mdCandidate is a device whose superblock names an array.
type mdCandidate struct {
	dev string
	sb  mdSuper
}

// superblocks are the md superblocks on the devices the host can see: every attached volume,
// read through its DRBD device where an up resource holds it (the raw device is busy then).
func (x *execCtx) superblocks() []mdCandidate {
	var out []mdCandidate
	devs := x.s.devices(x.h)
	for _, dev := range sortedKeys(devs) {
		v := devs[dev]
		if v.Data.MD == nil {
			continue
		}
		for _, r := range x.h.DRBD {
			if r.Up && r.VolumeID == v.ID {
				dev = r.device()
			}
		}
		out = append(out, mdCandidate{dev, *v.Data.MD})
	}
	return out
}

// mdGroup is an array to assemble: its members and what their superblocks say of it.
type mdGroup struct {
	uuid, level string
	want        int // members the array has
	members     []string
	tagged      bool // found by fixture tags: superblocks are written when it first starts
}

// mdAssemble starts arrays from their members' superblocks: the devices given, or those the
// host sees (md given, or --scan for every array found). A member that cannot be opened
// (busy, a Secondary DRBD device) is skipped; an array without all its members does not
// start.
func (x *execCtx) mdAssemble(m mdadmArgs) result {
	h := x.h
	groups := map[string]*mdGroup{}
	tagged := x.raidGroupsFromTags()
	switch {
	case len(m.devs) > 0:
		g := &mdGroup{members: x.devNames(m.devs)}
		for _, d := range m.devs {
			bd, why := x.openDevice(d, false)
			if why != "" {
				return fail(1, "mdadm: cannot open device %s: %s\nmdadm: %s has no superblock - assembly aborted", d, why, d)
			}
			switch sb := x.content(bd).MD; {
			case sb == nil && sameSet(g.members, tagged[m.md]):
				g.level, g.want, g.tagged = "raid0", len(g.members), true
			case sb == nil:
				return fail(1, "mdadm: no RAID superblock on %s\nmdadm: %s has no superblock - assembly aborted", d, d)
			case g.uuid != "" && sb.UUID != g.uuid:
				return fail(1, "mdadm: superblock on %s doesn't match others - assembly aborted", d)
			default:
				g.uuid, g.level, g.want = sb.UUID, sb.Level, sb.Devices
			}
		}
		groups[m.md] = g
	case m.md == "" && !m.scan:
		return fail(1, "mdadm: an md device or --scan must be given")
	default:
		found := map[string][]mdCandidate{}
		for _, c := range x.superblocks() {
			if m.md == "" || c.sb.Name == m.md {
				found[c.sb.Name] = append(found[c.sb.Name], c)
			}
		}
		for name, cs := range found {
			sort.Slice(cs, func(i, j int) bool { return cs[i].sb.Index < cs[j].sb.Index })
			g := &mdGroup{uuid: cs[0].sb.UUID, level: cs[0].sb.Level, want: cs[0].sb.Devices}
			for _, c := range cs {
				g.members = append(g.members, c.dev)
			}
			groups[name] = g
		}
		for name, members := range tagged {
			if groups[name] == nil && (m.md == "" || name == m.md) {
				groups[name] = &mdGroup{level: "raid0", want: len(members), members: members, tagged: true}
			}
		}
		if m.md != "" && groups[m.md] == nil {
			return fail(1, "mdadm: %s not identified in config file.", m.md)
		}
	}
	var out, notes strings.Builder
	for _, name := range sortedKeys(groups) {
		g := groups[name]
		if a := h.MD[name]; a != nil && a.Active {
			if m.scan && m.md == "" {
				continue // --scan skips what is already running
			}
			return fail(1, "mdadm: %s is already in use.", name)
		}
		var members []string
		for _, d := range g.members {
			if _, why := x.openDevice(d, true); why != "" {
				fmt.Fprintf(&notes, "mdadm: cannot open device %s: %s\n", d, why)
				continue
			}
			members = append(members, x.devName(d))
		}
		if len(members) < g.want {
			return result{out: out.String(), err: notes.String() + fmt.Sprintf("mdadm: %s assembled from %d drives - not enough to start the array.\n", name, len(members)), code: 1}
		}
		if g.tagged {
			// The tags stood in for superblocks: from now on the members carry real ones.
			g.uuid = fsUUID(h.InstanceID, name, "tags")
			for i, d := range members {
				bd, _ := x.openDevice(d, true)
				sb := mdSuper{UUID: g.uuid, Name: name, Level: g.level, Devices: len(members), Index: i}
				x.write(bd, func(d *blockData) { d.MD = &sb })
			}
		}
		h.MD[name] = &mdArray{UUID: g.uuid, Level: g.level, Devices: members, Active: true}
		fmt.Fprintf(&out, "mdadm: %s has been started with %d drives.\n", name, len(members))
		x.s.event(x.now, "md.assembled", h.InstanceID, "%s assembled on %s from %s", name, h.Hostname, strings.Join(members, " "))
	}
	if out.Len() == 0 {
		return fail(1, "mdadm: No arrays found in config file or automatically")
	}
	return result{out: out.String(), err: notes.String(), dur: 5 * time.Second}
}

// mdExamine prints the superblock of each device, exit 1 when one has none.
func (x *execCtx) mdExamine(devs []string) result {
	if len(devs) == 0 {
		return fail(2, "mdadm: No devices to examine")
	}
	var b strings.Builder
	for _, d := range devs {
		bd, why := x.openDevice(d, false)
		if why != "" {
			return result{out: b.String(), err: fmt.Sprintf("mdadm: cannot open %s: %s\n", d, why), code: 2}
		}
		sb := x.content(bd).MD
		if sb == nil {
			return result{out: b.String(), err: fmt.Sprintf("mdadm: No md superblock detected on %s.\n", d), code: 1}
		}
		fmt.Fprintf(&b, "%s:\n          Magic : a92b4efc\n        Version : 1.2\n     Array UUID : %s\n           Name : %s:%s\n     Raid Level : %s\n   Raid Devices : %d\n\n    Device Role : Active device %d\n",
			d, sb.UUID, x.h.Hostname, strings.TrimPrefix(sb.Name, "/dev/md"), sb.Level, sb.Devices, sb.Index)
	}
	return ok(b.String())
}

// raidGroupsFromTags stands in for md superblocks on fixtures: attached volumes tagged
// FixtureTagRAID=mdN are members of /dev/mdN — through their DRBD device when they back a DRBD
// resource, as md on top of DRBD is built.
func (x *execCtx) raidGroupsFromTags() map[string][]string {
	out := map[string][]string{}
	devs := x.s.devices(x.h)
	for _, dev := range sortedKeys(devs) {
		v := devs[dev]
		g, ok := v.Tags.get(FixtureTagRAID)
		if !ok || g == "" || v.Data.MD != nil {
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

func sameSet(a, b []string) bool {
	return len(a) == len(b) && slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
