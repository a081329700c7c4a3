// The DRBD configuration as drbdadm reads it: /etc/drbd.conf and the files it includes
// (drbd.d/global_common.conf, drbd.d/*.res), in DRBD 9's syntax (drbd.conf(5)):
//
//	resource home0 {
//	  device /dev/drbd0;
//	  disk /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123…;
//	  meta-disk internal;
//	  on ip-10-0-1-10 { node-id 0; address 10.0.1.10:7789; }
//	  on ip-10-0-1-11 { node-id 1; address 10.0.1.11:7789; }
//	  connection-mesh { hosts ip-10-0-1-10 ip-10-0-1-11; }
//	}
//
// What the simulation does not model it refuses with a parse error rather than ignoring:
// more than one volume or two hosts per resource, external meta-disks, floating and stacked
// resources, connection paths. Option sections (net, disk, options, handlers, startup) are
// parsed and their contents ignored.

package cloudsim

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// drbdConf is one resource as the configuration defines it.
type drbdConf struct {
	Name  string
	Hosts []drbdOn // the on sections, in file order
	File  string
	Line  int
	// AllowTwoPrimaries is net { allow-two-primaries yes; } of the resource.
	AllowTwoPrimaries bool
}

// drbdOn is a resource's on section, with what it inherits from the resource filled in.
type drbdOn struct {
	Names    []string // the host names it applies to (uname -n)
	NodeID   int
	Address  string // ip:port
	Minor    int
	Disk     string
	MetaDisk string
}

func (r *drbdConf) on(hostname string) (*drbdOn, *drbdOn) {
	var local, peer *drbdOn
	for i := range r.Hosts {
		if slices.Contains(r.Hosts[i].Names, hostname) {
			local = &r.Hosts[i]
		} else {
			peer = &r.Hosts[i]
		}
	}
	return local, peer
}

// confStmt is one statement of the file: words, and a block when it opens a section.
type confStmt struct {
	words    []string
	block    []confStmt
	hasBlock bool
	line     int
}

// Limits that keep a hostile file from costing more than a real one would.
const (
	maxConfDepth   = 8
	maxConfTokens  = 1 << 16
	maxConfInclude = 4
)

type confTok struct {
	text   string
	quoted bool
	line   int
}

func tokenizeConf(src string) ([]confTok, error) {
	var toks []confTok
	line := 1
	for i := 0; i < len(src); i++ {
		if len(toks) > maxConfTokens {
			return nil, confErr(line, "too many tokens")
		}
		c := src[i]
		switch {
		case c == '\n':
			line++
		case c == ' ' || c == '\t' || c == '\r':
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i--
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, confTok{text: string(c), line: line})
		case c == '"':
			var b strings.Builder
			i++
			for ; i < len(src) && src[i] != '"'; i++ {
				if src[i] == '\n' {
					return nil, confErr(line, "newline in a quoted string")
				}
				if src[i] == '\\' && i+1 < len(src) {
					i++
				}
				b.WriteByte(src[i])
			}
			if i >= len(src) {
				return nil, confErr(line, "unterminated quoted string")
			}
			toks = append(toks, confTok{text: b.String(), quoted: true, line: line})
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n{};#\"", rune(src[j])) {
				j++
			}
			toks = append(toks, confTok{text: src[i:j], line: line})
			i = j - 1
		}
	}
	return toks, nil
}

// parseConfStmts reads statements up to a closing brace (depth > 0) or the end.
func parseConfStmts(toks []confTok, pos *int, depth int) ([]confStmt, error) {
	if depth > maxConfDepth {
		return nil, confErr(toks[*pos-1].line, "sections nested too deep")
	}
	var out []confStmt
	var cur confStmt
	for *pos < len(toks) {
		t := toks[*pos]
		*pos++
		switch {
		case t.text == ";" && !t.quoted:
			if len(cur.words) == 0 {
				return nil, confErr(t.line, "parse error: ';' unexpected")
			}
			out = append(out, cur)
			cur = confStmt{}
		case t.text == "{" && !t.quoted:
			if len(cur.words) == 0 {
				return nil, confErr(t.line, "parse error: '{' unexpected")
			}
			block, err := parseConfStmts(toks, pos, depth+1)
			if err != nil {
				return nil, err
			}
			cur.block, cur.hasBlock = block, true
			out = append(out, cur)
			cur = confStmt{}
		case t.text == "}" && !t.quoted:
			if depth == 0 {
				return nil, confErr(t.line, "parse error: '}' unexpected")
			}
			if len(cur.words) > 0 {
				return nil, confErr(t.line, "parse error: missing ';' after %q", strings.Join(cur.words, " "))
			}
			return out, nil
		default:
			if len(cur.words) == 0 {
				cur.line = t.line
			}
			cur.words = append(cur.words, t.text)
		}
	}
	if depth > 0 {
		return nil, confErr(toks[len(toks)-1].line, "parse error: unexpected end of file: '}' missing")
	}
	if len(cur.words) > 0 {
		return nil, confErr(cur.line, "parse error: missing ';' after %q", strings.Join(cur.words, " "))
	}
	return out, nil
}

// drbdFile is what one configuration file holds.
type drbdFile struct {
	Resources []*drbdConf
	Includes  []string // include patterns, as written
}

// parseDRBDFile parses one configuration file (name is for messages).
func parseDRBDFile(name, src string) (drbdFile, error) {
	var f drbdFile
	toks, err := tokenizeConf(src)
	if err != nil {
		return f, fmt.Errorf("%s:%w", name, err)
	}
	pos := 0
	stmts, err := parseConfStmts(toks, &pos, 0)
	if err != nil {
		return f, fmt.Errorf("%s:%w", name, err)
	}
	for _, st := range stmts {
		switch kw := st.words[0]; {
		case kw == "skip" && st.hasBlock:
		case kw == "include" && !st.hasBlock && len(st.words) == 2:
			f.Includes = append(f.Includes, st.words[1])
		case (kw == "global" || kw == "common") && st.hasBlock && len(st.words) == 1:
		case kw == "resource" && st.hasBlock && len(st.words) == 2:
			r, err := resourceConf(st)
			if err != nil {
				return f, fmt.Errorf("%s:%w", name, err)
			}
			r.File = name
			f.Resources = append(f.Resources, r)
		case strings.HasPrefix(kw, "require-drbd-module-version-"):
		default:
			return f, fmt.Errorf("%s:%d: parse error: %q unexpected at the top level", name, st.line, strings.Join(st.words, " "))
		}
	}
	return f, nil
}

// confErr is a parse error at a line; the file name is put in front by parseDRBDFile.
func confErr(line int, format string, args ...any) error {
	return fmt.Errorf("%d: "+format, append([]any{line}, args...)...)
}

var reResName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// volumeParams collects device, disk and meta-disk, at resource, on or volume level.
type volumeParams struct {
	minor          *int
	disk, metaDisk string
}

func (v *volumeParams) set(st confStmt) (bool, error) {
	w := st.words
	switch w[0] {
	case "device":
		m, err := deviceMinor(w[1:])
		if err != nil {
			return true, confErr(st.line, "%v", err)
		}
		v.minor = &m
	case "disk":
		if st.hasBlock {
			return false, nil // disk options
		}
		if len(w) != 2 || (w[1] != "none" && !strings.HasPrefix(w[1], "/dev/")) {
			return true, confErr(st.line, "disk wants a device path or none")
		}
		v.disk = w[1]
	case "meta-disk":
		if len(w) != 2 || w[1] != "internal" {
			return true, confErr(st.line, "meta-disk %s: only internal meta data is simulated", strings.Join(w[1:], " "))
		}
		v.metaDisk = w[1]
	default:
		return false, nil
	}
	if st.hasBlock {
		return true, confErr(st.line, "%s takes no section", w[0])
	}
	return true, nil
}

// deviceMinor reads `device /dev/drbdN`, `device minor N` or `device /dev/drbdN minor N`.
func deviceMinor(w []string) (int, error) {
	minor := -1
	switch {
	case len(w) == 1 && strings.HasPrefix(w[0], "/dev/drbd"):
		n, err := strconv.Atoi(strings.TrimPrefix(w[0], "/dev/drbd"))
		if err != nil {
			return 0, fmt.Errorf("device %s: not /dev/drbd<minor>", w[0])
		}
		minor = n
	case len(w) == 2 && w[0] == "minor":
		n, err := strconv.Atoi(w[1])
		if err != nil {
			return 0, fmt.Errorf("device minor %s: not a number", w[1])
		}
		minor = n
	case len(w) == 3 && w[1] == "minor" && strings.HasPrefix(w[0], "/dev/drbd"):
		n, err := strconv.Atoi(w[2])
		if err != nil || "/dev/drbd"+w[2] != w[0] {
			return 0, fmt.Errorf("device %s minor %s: the name and minor differ", w[0], w[2])
		}
		minor = n
	default:
		return 0, fmt.Errorf("device wants /dev/drbd<minor> or minor <n>")
	}
	if minor < 0 || minor > 1048575 {
		return 0, fmt.Errorf("device minor %d is out of range", minor)
	}
	return minor, nil
}

// volumeSection reads `volume 0 { … }`: only volume 0 is simulated.
func (v *volumeParams) volumeSection(st confStmt) error {
	if len(st.words) != 2 || st.words[1] != "0" {
		return confErr(st.line, "volume %s: only one volume (0) per resource is simulated", strings.Join(st.words[1:], " "))
	}
	for _, p := range st.block {
		known, err := v.set(p)
		if err != nil {
			return err
		}
		if !known && !(p.words[0] == "disk" && p.hasBlock) {
			return confErr(p.line, "parse error: %q unexpected in volume", p.words[0])
		}
	}
	return nil
}

func resourceConf(st confStmt) (*drbdConf, error) {
	r := &drbdConf{Name: st.words[1], Line: st.line}
	if !reResName.MatchString(r.Name) {
		return nil, confErr(st.line, "resource name %q is not valid", r.Name)
	}
	var shared volumeParams
	type onSection struct {
		on     drbdOn
		params volumeParams
		hasID  bool
		line   int
	}
	var ons []onSection
	var meshes [][]string
	for _, p := range st.block {
		known, err := shared.set(p)
		if err != nil {
			return nil, err
		}
		if known {
			continue
		}
		switch kw := p.words[0]; {
		case kw == "skip" && p.hasBlock:
		case kw == "net" && p.hasBlock && len(p.words) == 1:
			for _, q := range p.block {
				if q.words[0] == "allow-two-primaries" && !q.hasBlock {
					r.AllowTwoPrimaries = len(q.words) == 1 || q.words[1] == "yes"
				}
			}
		case (kw == "disk" || kw == "options" || kw == "handlers" || kw == "startup") && p.hasBlock && len(p.words) == 1:
		case kw == "volume" && p.hasBlock:
			if err := shared.volumeSection(p); err != nil {
				return nil, err
			}
		case kw == "on" && p.hasBlock && len(p.words) >= 2:
			o := onSection{on: drbdOn{Names: p.words[1:]}, line: p.line}
			for _, q := range p.block {
				known, err := o.params.set(q)
				if err != nil {
					return nil, err
				}
				if known {
					continue
				}
				switch q.words[0] {
				case "node-id":
					n, err := strconv.Atoi(strings.Join(q.words[1:], " "))
					if err != nil || n < 0 || n > 31 || q.hasBlock {
						return nil, confErr(q.line, "node-id wants a number from 0 to 31")
					}
					o.on.NodeID, o.hasID = n, true
				case "address":
					a, err := drbdAddress(q.words[1:])
					if q.hasBlock {
						err = fmt.Errorf("takes no section")
					}
					if err != nil {
						return nil, confErr(q.line, "address: %v", err)
					}
					o.on.Address = a
				case "volume":
					if err := o.params.volumeSection(q); err != nil {
						return nil, err
					}
				default:
					if !(q.words[0] == "disk" && q.hasBlock) {
						return nil, confErr(q.line, "parse error: %q unexpected in on %s", q.words[0], strings.Join(p.words[1:], " "))
					}
				}
			}
			ons = append(ons, o)
		case kw == "connection-mesh" && p.hasBlock && len(p.words) == 1:
			var hosts []string
			for _, q := range p.block {
				switch {
				case q.words[0] == "hosts" && !q.hasBlock:
					hosts = append(hosts, q.words[1:]...)
				case q.words[0] == "net" && q.hasBlock:
				default:
					return nil, confErr(q.line, "parse error: %q unexpected in connection-mesh", q.words[0])
				}
			}
			meshes = append(meshes, hosts)
		case kw == "connection" && p.hasBlock:
			var hosts []string
			for _, q := range p.block {
				switch {
				case q.words[0] == "host" && !q.hasBlock && len(q.words) >= 2:
					hosts = append(hosts, q.words[1])
					rest := q.words[2:]
					for len(rest) >= 2 && (rest[0] == "port" || rest[0] == "address") {
						if rest[0] == "address" {
							return nil, confErr(q.line, "a connection's own host address is not simulated; give it in the on section")
						}
						rest = rest[2:]
					}
					if len(rest) > 0 {
						return nil, confErr(q.line, "parse error: %q unexpected after host %s", rest[0], q.words[1])
					}
				case (q.words[0] == "net" || q.words[0] == "disk" || q.words[0] == "volume") && q.hasBlock:
				case q.words[0] == "path":
					return nil, confErr(q.line, "connection paths are not simulated")
				default:
					return nil, confErr(q.line, "parse error: %q unexpected in connection", q.words[0])
				}
			}
			if len(hosts) != 2 {
				return nil, confErr(p.line, "a connection needs exactly two hosts")
			}
			meshes = append(meshes, hosts)
		case kw == "floating" || kw == "stacked-on-top-of":
			return nil, confErr(p.line, "%s resources are not simulated", kw)
		default:
			return nil, confErr(p.line, "parse error: %q unexpected in resource %s", kw, r.Name)
		}
	}
	if len(ons) == 0 {
		return nil, confErr(st.line, "resource %s has no on section", r.Name)
	}
	if len(ons) > 2 {
		return nil, confErr(st.line, "resource %s: more than two hosts are not simulated", r.Name)
	}
	names := map[string]bool{}
	for _, o := range ons {
		on := o.on
		pick := func(own, inherited string) string {
			if own != "" {
				return own
			}
			return inherited
		}
		on.Disk, on.MetaDisk = pick(o.params.disk, shared.disk), pick(o.params.metaDisk, shared.metaDisk)
		switch {
		case o.params.minor != nil:
			on.Minor = *o.params.minor
		case shared.minor != nil:
			on.Minor = *shared.minor
		default:
			return nil, confErr(o.line, "on %s: no device defined or inherited", strings.Join(on.Names, " "))
		}
		switch {
		case !o.hasID:
			return nil, confErr(o.line, "on %s: node-id is missing", strings.Join(on.Names, " "))
		case on.Address == "":
			return nil, confErr(o.line, "on %s: address is missing", strings.Join(on.Names, " "))
		case on.Disk == "" || on.Disk == "none":
			return nil, confErr(o.line, "on %s: no disk defined or inherited (diskless nodes are not simulated)", strings.Join(on.Names, " "))
		case on.MetaDisk == "":
			return nil, confErr(o.line, "on %s: no meta-disk defined or inherited", strings.Join(on.Names, " "))
		}
		for _, n := range on.Names {
			if names[n] {
				return nil, confErr(o.line, "host %s appears twice", n)
			}
			names[n] = true
		}
		for _, other := range r.Hosts {
			if other.NodeID == on.NodeID {
				return nil, confErr(o.line, "node-id %d is used twice", on.NodeID)
			}
			if other.Address == on.Address {
				return nil, confErr(o.line, "address %s is used twice", on.Address)
			}
		}
		r.Hosts = append(r.Hosts, on)
	}
	for _, mesh := range meshes {
		for _, n := range mesh {
			if !names[n] {
				return nil, confErr(st.line, "connection to %s: no on section for that host", n)
			}
		}
	}
	if len(r.Hosts) == 2 && len(meshes) == 0 {
		// Two hosts and no connection section: drbdadm connects them, as DRBD 8 did.
		return r, nil
	}
	if len(r.Hosts) == 2 {
		a, b := r.Hosts[0].Names, r.Hosts[1].Names
		linked := false
		for _, mesh := range meshes {
			hasA, hasB := false, false
			for _, n := range mesh {
				hasA = hasA || slices.Contains(a, n)
				hasB = hasB || slices.Contains(b, n)
			}
			linked = linked || (hasA && hasB)
		}
		if !linked {
			return nil, confErr(st.line, "resource %s: no connection between its two hosts", r.Name)
		}
	}
	return r, nil
}

// drbdAddress reads `[ipv4] A.B.C.D:PORT`.
func drbdAddress(w []string) (string, error) {
	if len(w) == 2 && w[0] == "ipv4" {
		w = w[1:]
	}
	if len(w) != 1 {
		return "", fmt.Errorf("want [ipv4] address:port (other families are not simulated)")
	}
	ap, err := netip.ParseAddrPort(w[0])
	if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		return "", fmt.Errorf("%q is not an IPv4 address:port", w[0])
	}
	return ap.String(), nil
}

// drbdConfig reads the host's configuration: /etc/drbd.conf and what it includes (patterns
// relative to /etc). A missing drbd.conf defines nothing.
func (x *execCtx) drbdConfig() (map[string]*drbdConf, error) {
	out := map[string]*drbdConf{}
	seen := map[string]bool{}
	var load func(file string, depth int) error
	load = func(file string, depth int) error {
		if depth > maxConfInclude {
			return fmt.Errorf("%s: includes nested too deep", file)
		}
		if seen[file] {
			return nil
		}
		seen[file] = true
		f, errRes := x.readFile("drbdadm", file)
		if errRes != nil {
			return nil
		}
		parsed, err := parseDRBDFile(file, f)
		if err != nil {
			return err
		}
		for _, r := range parsed.Resources {
			if prev := out[r.Name]; prev != nil {
				return fmt.Errorf("%s:%d: conflicting use of resource name '%s' (also in %s:%d)", r.File, r.Line, r.Name, prev.File, prev.Line)
			}
			out[r.Name] = r
		}
		for _, pattern := range parsed.Includes {
			if !path.IsAbs(pattern) {
				pattern = path.Join("/etc", pattern)
			}
			for _, p := range sortedKeys(x.files()) {
				if matched, _ := path.Match(pattern, p); matched {
					if err := load(p, depth+1); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := load("/etc/drbd.conf", 0); err != nil {
		return nil, err
	}
	minors := map[int]string{}
	for _, name := range sortedKeys(out) {
		if local, _ := out[name].on(x.h.Hostname); local != nil {
			if other, used := minors[local.Minor]; used {
				return nil, fmt.Errorf("%s:%d: device minor %d used by resources %s and %s", out[name].File, out[name].Line, local.Minor, other, name)
			}
			minors[local.Minor] = name
		}
	}
	return out, nil
}
