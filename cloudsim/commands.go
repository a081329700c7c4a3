package cloudsim

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

// result is what one simulated command did and how long it took in simulated time.
type result struct {
	out, err string
	code     int
	dur      time.Duration
}

func ok(out string) result { return result{out: out} }

func fail(code int, format string, args ...any) result {
	return result{err: fmt.Sprintf(format, args...) + "\n", code: code}
}

// execCtx is one script run on one host.
type execCtx struct {
	s       *Sim
	h       *host
	in      *instance
	now     time.Time // simulated time at which the current command starts
	errexit bool
	exited  bool
	depth   int
}

type builtin func(x *execCtx, args []string, stdin string) result

// commands is every command the simulated hosts know; anything else is exit 127.
var commands map[string]builtin

func init() {
	commands = map[string]builtin{
		"true":             func(*execCtx, []string, string) result { return ok("") },
		"false":            func(*execCtx, []string, string) result { return result{code: 1} },
		":":                func(*execCtx, []string, string) result { return ok("") },
		"echo":             cmdEcho,
		"hostname":         func(x *execCtx, _ []string, _ string) result { return ok(x.h.Hostname + "\n") },
		"uptime":           cmdUptime,
		"sleep":            cmdSleep,
		"exit":             cmdExit,
		"set":              cmdSet,
		"sudo":             cmdSudo,
		"bash":             cmdShC,
		"sh":               cmdShC,
		"cat":              cmdCat,
		"grep":             cmdGrep,
		"head":             headTail(false),
		"tail":             headTail(true),
		"wc":               cmdWc,
		"drbdadm":          cmdDrbdadm,
		"mdadm":            cmdMdadm,
		"fsck":             cmdFsck,
		"fsck.ext4":        cmdFsck,
		"e2fsck":           cmdFsck,
		"xfs_repair":       cmdFsck,
		"mount":            cmdMount,
		"umount":           cmdUmount,
		"mountpoint":       cmdMountpoint,
		"exportfs":         cmdExportfs,
		"systemctl":        cmdSystemctl,
		"service":          cmdService,
		"apt-get":          cmdAptGet,
		"dpkg-query":       cmdDpkgQuery,
		"openssl":          cmdOpenssl,
		"curl":             cmdCurl,
		"anyops-bootstrap": cmdBootstrap,
	}
}

// runScript runs a script on a host at simulated time now.
func (s *Sim) runScript(h *host, in *instance, script string, now time.Time) result {
	x := &execCtx{s: s, h: h, in: in, now: now}
	r := x.run(script)
	r.dur = x.now.Sub(now)
	return r
}

func (x *execCtx) run(script string) result {
	var total result
	toks, err := tokenize(script)
	if err != nil {
		return fail(2, "_script.sh: %s", err)
	}
	lists, err := parseScript(toks)
	if err != nil {
		return fail(2, "_script.sh: %s", err)
	}
	for _, ao := range lists {
		r := x.pipeline(ao.first)
		total.out += r.out
		total.err += r.err
		code := r.code
		for _, next := range ao.rest {
			if x.exited {
				break
			}
			if (next.op == tokAnd && code == 0) || (next.op == tokOr && code != 0) {
				r := x.pipeline(next.p)
				total.out += r.out
				total.err += r.err
				code = r.code
			}
		}
		total.code = code
		if x.exited || (x.errexit && code != 0) {
			break
		}
	}
	return total
}

func (x *execCtx) pipeline(p pipeline) result {
	var out result
	stdin := ""
	for i, c := range p {
		if x.exited {
			break
		}
		if c.stdinDevNull {
			stdin = ""
		}
		r := x.command(c.args, stdin)
		x.now = x.now.Add(r.dur)
		if c.stderrToOut {
			r.out, r.err = r.out+r.err, ""
		}
		if c.stdoutNull {
			r.out = ""
		}
		if c.stderrNull {
			r.err = ""
		}
		out.err += r.err
		out.code = r.code
		if i == len(p)-1 {
			out.out = r.out
		} else {
			stdin = r.out
		}
	}
	return out
}

func (x *execCtx) command(args []string, stdin string) result {
	if r, injected := x.injectedFailure(args); injected {
		return r
	}
	fn, ok := commands[args[0]]
	if !ok {
		return fail(127, "_script.sh: line 1: %s: command not found", args[0])
	}
	return fn(x, args[1:], stdin) // commands that only read state take no simulated time
}

// ---- general commands ----------------------------------------------------------------------

func cmdEcho(_ *execCtx, args []string, _ string) result {
	nl := "\n"
	if len(args) > 0 && args[0] == "-n" {
		nl, args = "", args[1:]
	}
	return ok(strings.Join(args, " ") + nl)
}

func cmdUptime(x *execCtx, _ []string, _ string) result {
	up := x.now.Sub(x.h.BootedAt).Round(time.Minute)
	return ok(fmt.Sprintf(" %s up %s,  1 user,  load average: 0.08, 0.03, 0.05\n", x.now.Format("15:04:05"), up))
}

func cmdSleep(_ *execCtx, args []string, _ string) result {
	if len(args) != 1 {
		return fail(1, "sleep: missing operand")
	}
	secs, err := strconv.ParseFloat(strings.TrimSuffix(args[0], "s"), 64)
	if err != nil || secs < 0 || secs > 86400 {
		return fail(1, "sleep: invalid time interval '%s'", args[0])
	}
	return result{dur: time.Duration(secs * float64(time.Second))}
}

func cmdExit(x *execCtx, args []string, _ string) result {
	code := 0
	if len(args) > 0 {
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return fail(2, "_script.sh: exit: %s: numeric argument required", args[0])
		}
		code = n & 0xff
	}
	x.exited = true
	return result{code: code}
}

func cmdSet(x *execCtx, args []string, _ string) result {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "+o":
			i++ // pipefail and friends: accepted, pipelines already report their last command
		case strings.HasPrefix(a, "-"):
			if strings.Contains(a, "e") {
				x.errexit = true
			}
		case strings.HasPrefix(a, "+"):
			if strings.Contains(a, "e") {
				x.errexit = false
			}
		default:
			return fail(2, "_script.sh: set: %s: positional parameters are not simulated", a)
		}
	}
	return ok("")
}

func cmdSudo(x *execCtx, args []string, stdin string) result {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if args[0] == "-u" && len(args) > 1 {
			args = args[1:]
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return fail(1, "usage: sudo command")
	}
	return x.command(args, stdin)
}

func cmdShC(x *execCtx, args []string, _ string) result {
	for len(args) > 0 && args[0] != "-c" && strings.HasPrefix(args[0], "-") {
		args = args[1:]
	}
	if len(args) < 2 || args[0] != "-c" {
		return fail(2, "cloudsim: only `bash -c SCRIPT` is simulated")
	}
	if x.depth > 4 {
		return fail(2, "cloudsim: nested shells too deep")
	}
	sub := &execCtx{s: x.s, h: x.h, in: x.in, now: x.now, depth: x.depth + 1}
	r := sub.run(args[1])
	r.dur = sub.now.Sub(x.now)
	return r
}

func cmdCat(x *execCtx, args []string, stdin string) result {
	if len(args) == 0 {
		return ok(stdin)
	}
	var b strings.Builder
	for _, f := range args {
		switch f {
		case "/proc/mdstat":
			b.WriteString(x.mdstat())
		case "/etc/exports":
			b.WriteString(x.exportsList(false))
		case "/etc/hostname":
			b.WriteString(x.h.Hostname + "\n")
		case "/proc/mounts":
			b.WriteString(x.mountList())
		default:
			return fail(1, "cat: %s: No such file or directory", f)
		}
	}
	return ok(b.String())
}

func cmdGrep(_ *execCtx, args []string, stdin string) result {
	quiet, invert, count, fixed := false, false, false, false
	var pattern string
	for _, a := range args {
		switch {
		case a == "-q":
			quiet = true
		case a == "-v":
			invert = true
		case a == "-c":
			count = true
		case a == "-F":
			fixed = true
		case a == "-E":
		case strings.HasPrefix(a, "-") && pattern == "":
			return fail(2, "grep: option %s is not simulated", a)
		case pattern == "":
			pattern = a
		default:
			return fail(2, "grep: reading files is not simulated; pipe into grep")
		}
	}
	if fixed {
		pattern = regexp.QuoteMeta(pattern)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fail(2, "grep: invalid pattern: %v", err)
	}
	var hits []string
	for _, line := range splitLines(stdin) {
		if re.MatchString(line) != invert {
			hits = append(hits, line)
		}
	}
	code := 0
	if len(hits) == 0 {
		code = 1
	}
	switch {
	case quiet:
		return result{code: code}
	case count:
		return result{out: fmt.Sprintf("%d\n", len(hits)), code: code}
	}
	return result{out: joinLines(hits), code: code}
}

func headTail(tail bool) builtin {
	return func(_ *execCtx, args []string, stdin string) result {
		n := 10
		for i := 0; i < len(args); i++ {
			a := args[i]
			switch {
			case a == "-n" && i+1 < len(args):
				v, err := strconv.Atoi(args[i+1])
				if err != nil {
					return fail(1, "invalid number of lines: %s", args[i+1])
				}
				n, i = v, i+1
			case strings.HasPrefix(a, "-") && len(a) > 1:
				v, err := strconv.Atoi(a[1:])
				if err != nil {
					return fail(1, "invalid option %s", a)
				}
				n = v
			default:
				return fail(1, "reading files is not simulated")
			}
		}
		lines := splitLines(stdin)
		n = max(0, min(n, len(lines)))
		if tail {
			return ok(joinLines(lines[len(lines)-n:]))
		}
		return ok(joinLines(lines[:n]))
	}
}

func cmdWc(_ *execCtx, args []string, stdin string) result {
	if len(args) != 1 || args[0] != "-l" {
		return fail(1, "wc: only wc -l is simulated")
	}
	return ok(fmt.Sprintf("%d\n", len(splitLines(stdin))))
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func joinLines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// ---- DRBD ----------------------------------------------------------------------------------

func cmdDrbdadm(x *execCtx, args []string, _ string) result {
	var force bool
	var rest []string
	for _, a := range args {
		switch a {
		case "--force":
			force = true
		case "-v", "--verbose":
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		return fail(20, "USAGE: drbdadm COMMAND [OPTION...] {all|RESOURCE...}")
	}
	sub, names := rest[0], rest[1:]
	h := x.h
	if len(names) == 0 || (len(names) == 1 && names[0] == "all") {
		if sub != "status" && len(names) == 0 {
			return fail(20, "drbdadm %s: missing resource name", sub)
		}
		names = nil
		for _, n := range sortedKeys(h.DRBD) {
			if h.DRBD[n].Up || sub != "status" {
				names = append(names, n)
			}
		}
		if sub == "status" && len(names) == 0 {
			return fail(10, "# No currently configured DRBD found.")
		}
	}
	var out strings.Builder
	for _, name := range names {
		r := h.DRBD[name]
		switch sub {
		case "status":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource\nCommand 'drbdsetup status %s' terminated with exit code 10", name, name)
			}
			out.WriteString(x.s.drbdStatus(h, r))
			if len(names) > 1 {
				out.WriteString("\n")
			}
		case "create-md":
			if r == nil {
				v := x.configuredVolume(name)
				if v == nil {
					return notDefined(name)
				}
				r = x.s.newDRBDRes(h, name, v)
			}
			if r.Up {
				return fail(20, "Device '%d' is configured!\nCommand 'drbdmeta %d v09 %s internal create-md 1' terminated with exit code 20", r.Minor, r.Minor, r.Name)
			}
			if r.MetaData && !force {
				return fail(40, "md_offset already has valid meta data; use --force to overwrite")
			}
			r.MetaData, r.Disk, r.OutOfSync, r.ResyncTotal, r.ResyncDone = true, "Inconsistent", 0, 0, 0
			out.WriteString("initializing activity log\ninitializing bitmap (32 KB) to all zero\nWriting meta data...\nNew drbd meta data block successfully created.\n")
			x.s.event(x.now, "drbd.create-md", h.InstanceID, "drbd %s meta data created on %s", name, h.Hostname)
		case "up", "adjust":
			if r == nil {
				if x.configuredVolume(name) == nil {
					return notDefined(name)
				}
				return fail(10, "No valid meta data found\nCommand 'drbdmeta %s v09 internal apply-al' terminated with exit code 255", name)
			}
			if !r.MetaData {
				return fail(10, "No valid meta data found")
			}
			if r.Up && sub == "up" {
				return fail(10, "%s: Failure: (161) Minor or volume exists already (delete it first)", r.device())
			}
			if !r.Up {
				r.Up, r.Role, r.AdminDown = true, "Secondary", false
				if r.Disk == "Diskless" {
					r.Disk = "Inconsistent"
				}
				x.s.event(x.now, "drbd.up", h.InstanceID, "drbd %s up on %s (disk %s)", name, h.Hostname, r.Disk)
			}
		case "down":
			if r == nil {
				return notDefined(name)
			}
			if x.heldOpen(r.device()) {
				return fail(11, "%s: State change failed: (-12) Device is held open by someone", r.device())
			}
			r.Up, r.Role, r.Connected = false, "Secondary", false
			x.s.event(x.now, "drbd.down", h.InstanceID, "drbd %s down on %s", name, h.Hostname)
		case "primary":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource", name)
			}
			if _, pr, linked := x.s.drbdLinked(h, r); linked && pr.Role == "Primary" {
				return fail(11, "%s: State change failed: (-1) Multiple primaries not allowed by config", r.device())
			}
			if r.Disk != "UpToDate" && !force {
				return fail(11, "%s: State change failed: (-2) Need access to UpToDate data", r.device())
			}
			if r.Disk == "Inconsistent" || r.Disk == "Outdated" {
				r.Disk, r.ResyncTotal, r.ResyncDone, r.OutOfSync = "UpToDate", 0, 0, 0
			}
			r.Role = "Primary"
			x.s.event(x.now, "drbd.primary", h.InstanceID, "drbd %s is Primary on %s (force=%v)", name, h.Hostname, force)
			// A forced primary makes the peer the one to resync, from scratch if it was
			// inconsistent too.
			if peer, pr, linked := x.s.drbdLinked(h, r); linked && pr.Disk != "UpToDate" && pr.ResyncTotal == 0 {
				x.s.drbdConnected(peer, pr, h, r, x.now)
			}
		case "secondary":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource", name)
			}
			if x.heldOpen(r.device()) {
				return fail(11, "%s: State change failed: (-12) Device is held open by someone", r.device())
			}
			r.Role = "Secondary"
			x.s.event(x.now, "drbd.secondary", h.InstanceID, "drbd %s is Secondary on %s", name, h.Hostname)
		case "disconnect":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource", name)
			}
			r.AdminDown = true
		case "connect":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource", name)
			}
			r.AdminDown = false
		default:
			return fail(20, "drbdadm: Unknown command '%s'", sub)
		}
	}
	x.s.advanceDRBD(x.now, x.now) // connection changes show at once
	return ok(out.String())
}

func notDefined(name string) result {
	return fail(10, "'%s' not defined in your config (for this host).", name)
}

// configuredVolume is the attached volume whose tags define DRBD resource name on this host.
func (x *execCtx) configuredVolume(name string) *volume {
	for _, v := range x.s.devices(x.h) {
		if n, _ := v.Tags.get(anyops.TagDRBDResource); n == name {
			return v
		}
	}
	return nil
}

// ---- md RAID -------------------------------------------------------------------------------

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
		h.MD[md] = &mdArray{Level: "raid" + strings.TrimPrefix(level, "raid"), Devices: canonical(devs), Active: true}
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
				a = &mdArray{Level: "raid0", Devices: canonical(members)}
				h.MD[name] = a
			}
			if a.Active {
				if scan && md == "" {
					continue // --scan skips what is already running
				}
				return fail(1, "mdadm: %s is already in use.", name)
			}
			if len(devs) > 0 && !sameSet(canonical(devs), a.Devices) {
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
		if _, ok := have[canonicalDevice(d)]; ok {
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

// drbdByDevice is the up DRBD resource whose device is dev, or nil.
func (x *execCtx) drbdByDevice(dev string) *drbdRes {
	for _, r := range x.h.DRBD {
		if r.Up && r.device() == dev {
			return r
		}
	}
	return nil
}

// volumeOf is the volume under a device path: attached directly or through DRBD.
func (x *execCtx) volumeOf(dev string) *volume {
	if v, ok := x.s.devices(x.h)[canonicalDevice(dev)]; ok {
		return v
	}
	if r := x.drbdByDevice(dev); r != nil {
		return x.s.st.Volumes[r.VolumeID]
	}
	return nil
}

// heldOpen is whether a device is mounted or a member of an active md array.
func (x *execCtx) heldOpen(dev string) bool {
	if _, mounted := x.mountedDevice(dev); mounted {
		return true
	}
	for _, a := range x.h.MD {
		if a.Active && slices.Contains(a.Devices, canonicalDevice(dev)) {
			return true
		}
	}
	return false
}

func canonical(devs []string) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = canonicalDevice(d)
	}
	return out
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// ---- block devices, filesystems, mounts ----------------------------------------------------

// resolveDevice finds what a device path is on this host: an attached volume, a DRBD device
// (and its backing volume), or an active md array.
func (x *execCtx) resolveDevice(dev string) (vols []*volume, drbd *drbdRes, ok bool) {
	have := x.s.devices(x.h)
	if v, found := have[canonicalDevice(dev)]; found {
		return []*volume{v}, nil, true
	}
	// A partition of an attached volume (/dev/xvdf1) is the volume for our purposes.
	if v, found := have[canonicalDevice(strings.TrimRight(dev, "0123456789"))]; found && strings.HasPrefix(dev, "/dev/xvd") {
		return []*volume{v}, nil, true
	}
	for _, r := range x.h.DRBD {
		if r.device() == dev && r.Up {
			return []*volume{x.s.st.Volumes[r.VolumeID]}, r, true
		}
	}
	if a := x.h.MD[dev]; a != nil && a.Active {
		for _, d := range a.Devices {
			vols = append(vols, x.volumeOf(d))
		}
		return vols, nil, true
	}
	return nil, nil, false
}

func (x *execCtx) mountedDevice(dev string) (string, bool) {
	for _, mp := range sortedKeys(x.h.Mounts) {
		if m := x.h.Mounts[mp]; m.Device == dev || sameDevice(m.Device, dev) {
			return mp, true
		}
	}
	return "", false
}

func cmdFsck(x *execCtx, args []string, _ string) result {
	var dev string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			dev = a
		}
	}
	if dev == "" {
		return fail(8, "Usage: fsck [-fnpy] device")
	}
	vols, _, found := x.resolveDevice(dev)
	if !found {
		return fail(8, "fsck.ext4: No such file or directory while trying to open %s", dev)
	}
	if mp, mounted := x.mountedDevice(dev); mounted {
		return fail(8, "%s is mounted on %s.\ne2fsck: Cannot continue, aborting.", dev, mp)
	}
	var size int32
	corrupt := false
	for _, v := range vols {
		if v != nil {
			size += v.SizeGiB
			corrupt = corrupt || v.Corrupt
		}
	}
	dur := time.Duration(size)*time.Second + 5*time.Second // about a second per GiB
	if corrupt {
		return result{out: fmt.Sprintf("%s contains a file system with errors, check forced.\nPass 1: Checking inodes, blocks, and sizes\nInode 7 has illegal block(s).\n", dev),
			err:  fmt.Sprintf("%s: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.\n\t(i.e., without -a or -p options)\n\n%s: ***** FILE SYSTEM WAS MODIFIED *****\n%s: ********** WARNING: Filesystem still has errors **********\n", dev, dev, dev),
			code: 4, dur: dur}
	}
	return result{out: fmt.Sprintf("%s: clean, 11/%d files, %d/%d blocks\n", dev, int(size)*65536, int(size)*4096, int(size)*262144), dur: dur}
}

func cmdMount(x *execCtx, args []string, _ string) result {
	fstype := "ext4"
	var pos []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-t" && i+1 < len(args):
			fstype, i = args[i+1], i+1
		case a == "-o" && i+1 < len(args):
			i++
		case strings.HasPrefix(a, "-"):
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) == 0 {
		return ok(x.mountList())
	}
	if len(pos) != 2 {
		return fail(1, "mount: only `mount [-t type] [-o options] DEVICE DIR` is simulated")
	}
	dev, dir := pos[0], pos[1]
	vols, drbd, found := x.resolveDevice(dev)
	if !found {
		return fail(32, "mount: %s: special device %s does not exist.", dir, dev)
	}
	if drbd != nil && drbd.Role != "Primary" {
		return fail(32, "mount: %s: wrong medium type (%s is Secondary).", dir, dev)
	}
	if _, busy := x.h.Mounts[dir]; busy {
		return fail(32, "mount: %s: %s already mounted or mount point busy.", dir, dev)
	}
	if mp, mounted := x.mountedDevice(dev); mounted {
		return fail(32, "mount: %s: %s already mounted on %s.", dir, dev, mp)
	}
	for _, v := range vols {
		if v != nil && v.Corrupt {
			return fail(32, "mount: %s: wrong fs type, bad option, bad superblock on %s, missing codepage or helper program, or other error.", dir, dev)
		}
	}
	x.h.Mounts[dir] = mountEntry{Device: dev, FSType: fstype}
	x.s.event(x.now, "host.mount", x.h.InstanceID, "%s mounted on %s on %s", dev, dir, x.h.Hostname)
	return result{dur: time.Second}
}

func (x *execCtx) mountList() string {
	var b strings.Builder
	for _, mp := range sortedKeys(x.h.Mounts) {
		m := x.h.Mounts[mp]
		fmt.Fprintf(&b, "%s on %s type %s (rw,relatime)\n", m.Device, mp, m.FSType)
	}
	return b.String()
}

func cmdUmount(x *execCtx, args []string, _ string) result {
	var target string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			target = a
		}
	}
	if target == "" {
		return fail(1, "Usage: umount DIR|DEVICE")
	}
	mp := target
	if _, ok := x.h.Mounts[mp]; !ok {
		var found bool
		if mp, found = x.mountedDevice(target); !found {
			return fail(32, "umount: %s: not mounted.", target)
		}
	}
	if mp == "/" {
		return fail(32, "umount: /: target is busy.")
	}
	for ex := range x.h.Exports {
		if p := ex[strings.IndexByte(ex, ':')+1:]; p == mp || strings.HasPrefix(p, mp+"/") {
			return fail(32, "umount: %s: target is busy (exported over NFS as %s).", mp, ex)
		}
	}
	delete(x.h.Mounts, mp)
	x.s.event(x.now, "host.umount", x.h.InstanceID, "%s unmounted on %s", mp, x.h.Hostname)
	return result{dur: time.Second}
}

func cmdMountpoint(x *execCtx, args []string, _ string) result {
	quiet := false
	var dir string
	for _, a := range args {
		if a == "-q" {
			quiet = true
		} else {
			dir = a
		}
	}
	if _, mounted := x.h.Mounts[dir]; mounted {
		if quiet {
			return ok("")
		}
		return ok(dir + " is a mountpoint\n")
	}
	if quiet {
		return result{code: 32}
	}
	return result{out: dir + " is not a mountpoint\n", code: 32}
}

// ---- NFS -----------------------------------------------------------------------------------

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

// underMount is whether path lies on a mounted data filesystem (not the root disk).
func (x *execCtx) underMount(path string) bool {
	for mp := range x.h.Mounts {
		if mp != "/" && (path == mp || strings.HasPrefix(path, mp+"/")) {
			return true
		}
	}
	return false
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

// ---- services and packages -----------------------------------------------------------------

func cmdSystemctl(x *execCtx, args []string, _ string) result {
	var pos []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
		}
	}
	if len(pos) == 1 && pos[0] == "daemon-reload" {
		return ok("")
	}
	if len(pos) != 2 {
		return fail(1, "systemctl: only `systemctl VERB SERVICE` is simulated")
	}
	return x.serviceVerb(pos[0], strings.TrimSuffix(pos[1], ".service"))
}

func cmdService(x *execCtx, args []string, _ string) result {
	if len(args) != 2 {
		return fail(1, "Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]")
	}
	return x.serviceVerb(args[1], args[0])
}

func (x *execCtx) serviceVerb(verb, svc string) result {
	state, known := x.h.Services[svc]
	if !known {
		if verb == "is-active" {
			return result{out: "inactive\n", code: 3}
		}
		return fail(5, "Failed to %s %s.service: Unit %s.service not found.", verb, svc, svc)
	}
	switch verb {
	case "restart", "start", "reload", "try-restart", "reload-or-restart":
		x.h.Services[svc] = "active"
		x.s.event(x.now, "host.service."+verb, x.h.InstanceID, "%s: %s on %s", verb, svc, x.h.Hostname)
		return result{dur: 3 * time.Second}
	case "stop":
		x.h.Services[svc] = "inactive"
		x.s.event(x.now, "host.service.stop", x.h.InstanceID, "%s stopped on %s", svc, x.h.Hostname)
		return result{dur: 2 * time.Second}
	case "is-active":
		if state == "active" {
			return ok("active\n")
		}
		return result{out: state + "\n", code: 3}
	case "status":
		out := fmt.Sprintf("● %s.service\n   Loaded: loaded (/lib/systemd/system/%s.service; enabled)\n   Active: %s", svc, svc, state)
		if state == "active" {
			return ok(out + fmt.Sprintf(" (running) since %s\n", x.h.BootedAt.UTC().Format("Mon 2006-01-02 15:04:05 UTC")))
		}
		return result{out: out + " (dead)\n", code: 3}
	case "enable", "disable", "is-enabled":
		if verb == "is-enabled" {
			return ok("enabled\n")
		}
		return ok("")
	}
	return fail(1, "Unknown operation '%s'.", verb)
}

func cmdAptGet(x *execCtx, args []string, _ string) result {
	yes, onlyUpgrade := false, false
	var pos []string
	for _, a := range args {
		switch {
		case a == "-y" || a == "--yes" || a == "--assume-yes" || a == "-qy" || a == "-yq":
			yes = true
		case a == "--only-upgrade":
			onlyUpgrade = true
		case strings.HasPrefix(a, "-"):
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) == 0 {
		return fail(100, "E: Invalid operation")
	}
	h := x.h
	switch pos[0] {
	case "update":
		return result{out: "Reading package lists... Done\n", dur: 20 * time.Second}
	case "upgrade", "dist-upgrade", "install":
		var want []string
		if pos[0] == "install" {
			if len(pos) == 1 {
				return ok("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n")
			}
			want = pos[1:]
		} else {
			for p := range h.Packages {
				if _, newer := upgradedPackages[p]; newer {
					want = append(want, p)
				}
			}
		}
		sort.Strings(want)
		var upgrade, install []string
		var notes strings.Builder
		for _, p := range want {
			name := strings.SplitN(p, "=", 2)[0]
			cur, have := h.Packages[name]
			newest, newer := upgradedPackages[name]
			switch {
			case have && newer && cur != newest:
				upgrade = append(upgrade, name)
			case have:
			case onlyUpgrade && (newer || knownPackage(name)):
				fmt.Fprintf(&notes, "Skipping %s, it is not installed and only upgrades are requested.\n", name)
			case newer || knownPackage(name):
				install = append(install, name)
			default:
				return fail(100, "Reading package lists...\nE: Unable to locate package %s", name)
			}
		}
		summary := notes.String() + fmt.Sprintf("%d upgraded, %d newly installed, 0 to remove and 0 not upgraded.\n", len(upgrade), len(install))
		if len(upgrade)+len(install) == 0 {
			return result{out: "Reading package lists... Done\n" + summary, dur: 5 * time.Second}
		}
		if !yes {
			return result{out: summary + "Do you want to continue? [Y/n] Abort.\n", code: 1, dur: 2 * time.Second}
		}
		for _, p := range upgrade {
			h.Packages[p] = upgradedPackages[p]
		}
		for _, p := range install {
			h.Packages[p] = packageVersion(p)
			for svc, pkg := range servicePackage {
				if pkg == p {
					h.Services[svc] = "active"
				}
			}
		}
		x.s.event(x.now, "host.packages", h.InstanceID, "apt-get %s on %s: upgraded %v, installed %v", pos[0], h.Hostname, upgrade, install)
		return result{out: "Reading package lists... Done\n" + summary, dur: 90 * time.Second}
	}
	return fail(100, "E: Invalid operation %s", pos[0])
}

func knownPackage(p string) bool {
	for _, pkgs := range rolePackages {
		if _, ok := pkgs[p]; ok {
			return true
		}
	}
	_, ok := basePackages[p]
	return ok
}

func packageVersion(p string) string {
	if v, ok := upgradedPackages[p]; ok {
		return v
	}
	for _, pkgs := range rolePackages {
		if v, ok := pkgs[p]; ok {
			return v
		}
	}
	return basePackages[p]
}

func cmdDpkgQuery(x *execCtx, args []string, _ string) result {
	format := "${Package}\t${Version}\n"
	var pkgs []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-W" || a == "--show":
		case a == "-f" && i+1 < len(args):
			format, i = args[i+1], i+1
		case strings.HasPrefix(a, "--showformat="):
			format = strings.TrimPrefix(a, "--showformat=")
		case strings.HasPrefix(a, "-"):
			return fail(2, "dpkg-query: option %s is not simulated", a)
		default:
			pkgs = append(pkgs, a)
		}
	}
	var b strings.Builder
	for _, p := range pkgs {
		v, ok := x.h.Packages[p]
		if !ok {
			return result{out: b.String(), err: fmt.Sprintf("dpkg-query: no packages found matching %s\n", p), code: 1}
		}
		b.WriteString(strings.NewReplacer("${Package}", p, "${Version}", v, `\n`, "\n", `\t`, "\t").Replace(format))
	}
	return ok(b.String())
}

func cmdOpenssl(x *execCtx, args []string, _ string) result {
	if len(args) == 0 || args[0] != "version" {
		return fail(1, "openssl: only `openssl version` is simulated")
	}
	v := x.h.Packages["openssl"]
	built := "Mon Feb  3 18:29:23 UTC 2014"
	if v == upgradedPackages["openssl"] {
		built = "Mon Apr  7 15:08:30 UTC 2014"
	}
	if len(args) > 1 && args[1] == "-b" {
		return ok("built on: " + built + "\n")
	}
	return ok("OpenSSL 1.0.1f 6 Jan 2014\n")
}

// cmdCurl is the health probe: http://localhost[:port]/... answers when the service behind
// the port is active.
func cmdCurl(x *execCtx, args []string, _ string) result {
	var url string
	failFlag := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-w" || a == "-m" || a == "--max-time" || a == "-H":
			i++
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--"):
			if strings.Contains(a, "f") {
				failFlag = true
			}
		case a == "--fail":
			failFlag = true
		case strings.HasPrefix(a, "-"):
		default:
			url = a
		}
	}
	_ = failFlag
	rest := strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
	hostPort := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostPort = rest[:i]
	}
	hostName, port := hostPort, "80"
	if i := strings.LastIndexByte(hostPort, ':'); i >= 0 {
		hostName, port = hostPort[:i], hostPort[i+1:]
	}
	if hostName != "localhost" && hostName != "127.0.0.1" && hostName != x.h.Hostname {
		return fail(6, "curl: (6) Could not resolve host: %s", hostName)
	}
	svc := map[string]string{"80": "nginx", "443": "nginx", "8888": "tornado", "8080": "uwsgi", "2049": "nfs-server"}[port]
	if svc == "" || x.h.Services[svc] != "active" {
		return fail(7, "curl: (7) Failed to connect to %s port %s: Connection refused", hostName, port)
	}
	return ok("ok\n")
}

// cmdBootstrap is the cluster build step: the first run installs the role's packages and
// starts its services, which with the boot makes a new server take about 20 minutes.
func cmdBootstrap(x *execCtx, args []string, _ string) result {
	role := x.h.Role
	for i := 0; i < len(args); i++ {
		if args[i] == "--role" && i+1 < len(args) {
			role, i = args[i+1], i+1
		} else if strings.HasPrefix(args[i], "--role=") {
			role = strings.TrimPrefix(args[i], "--role=")
		}
	}
	pkgs, known := rolePackages[role]
	if !known {
		return fail(2, "anyops-bootstrap: unknown role %q (file, backup, web, console, task); pass --role or tag the instance %s", role, anyops.TagRole)
	}
	if x.h.Bootstrapped && x.h.Role == role {
		return result{out: fmt.Sprintf("%s already bootstrapped as %s\n", x.h.Hostname, role), dur: 30 * time.Second}
	}
	x.h.Role = role
	for p, v := range pkgs {
		x.h.Packages[p] = v
	}
	for _, svc := range roleServices[role] {
		x.h.Services[svc] = "active"
	}
	x.h.Bootstrapped = true
	x.s.event(x.now, "host.bootstrap", x.h.InstanceID, "%s bootstrapping as %s (takes %s)", x.h.Hostname, role, bootstrapTime)
	return result{out: fmt.Sprintf("bootstrapped %s as %s\n", x.h.Hostname, role), dur: bootstrapTime}
}
