// Files: each host has a small table of the configuration files scripts write and read —
// everything under /etc (drbd.conf and /etc/drbd.d/*.res above all) — and of the directories
// mkdir made. Scripts write files by redirection (`printf '%s\n' … > /etc/drbd.d/r0.res`) and
// use cat, cmp, mv, rm, mkdir and ls on them. Writing anywhere but under /etc is refused with
// a message saying so, as is anything else the table cannot answer.

package cloudsim

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// hostFile is one file of a host's table.
type hostFile struct {
	Content  string    `json:"content"`
	Modified time.Time `json:"modified"`
}

// maxFileSize bounds one file, as a script's own size is bounded.
const maxFileSize = 1 << 20

// What a fresh host has, as the image ships it: drbd-utils' configuration, and the usual
// directories.
var (
	baseDirs  = []string{"/", "/etc", "/etc/drbd.d", "/etc/mdadm", "/dev", "/home", "/mnt", "/root", "/srv", "/tmp", "/var"}
	baseFiles = map[string]string{
		"/etc/drbd.conf": "# You can find an example in  /usr/share/doc/drbd.../drbd.conf.example\n\n" +
			"include \"drbd.d/global_common.conf\";\ninclude \"drbd.d/*.res\";\n",
		"/etc/drbd.d/global_common.conf": "global {\n\tusage-count no;\n}\n\ncommon {\n\tnet {\n\t\tprotocol C;\n\t}\n}\n",
	}
)

// fileTable returns the host's files, seeding what the image ships the first time (also for
// hosts from a state file written before hosts had files).
func (h *host) fileTable(at time.Time) map[string]*hostFile {
	if h.Files == nil {
		h.Files = map[string]*hostFile{"/etc/hostname": {Content: h.Hostname + "\n", Modified: at}}
		for p, c := range baseFiles {
			h.Files[p] = &hostFile{Content: c, Modified: at}
		}
		h.Dirs = map[string]bool{}
		for _, d := range baseDirs {
			h.Dirs[d] = true
		}
	}
	return h.Files
}

func (x *execCtx) files() map[string]*hostFile { return x.h.fileTable(x.now) }

func (x *execCtx) isDir(p string) bool {
	x.files()
	return x.h.Dirs[p]
}

// writablePath is whether scripts may write p: a clean absolute path under /etc.
func writablePath(p string) bool {
	return path.IsAbs(p) && path.Clean(p) == p && strings.HasPrefix(p, "/etc/")
}

// generatedFiles are the files whose content the host's state makes: they are read, never
// written.
var generatedFiles = map[string]func(x *execCtx) string{
	"/proc/mdstat": (*execCtx).mdstat,
	"/proc/mounts": (*execCtx).procMounts,
	"/etc/exports": func(x *execCtx) string { return x.exportsList(false) },
}

// readFile returns a file's content, or the error result a tool prints for it (tool names
// the tool in the message). A file under a stale NFS mount blocks: the result is x.hang()'s.
func (x *execCtx) readFile(tool, p string) (string, *result) {
	if gen, ok := generatedFiles[p]; ok {
		return gen(x), nil
	}
	var r result
	if fp, found, blocked := x.dataPath(tool, p); blocked != nil {
		return "", blocked
	} else if found {
		if c, ok := fp.read(); ok {
			return c, nil
		}
		if fp.isDir() {
			r = fail(1, "%s: %s: Is a directory", tool, p)
		} else {
			r = fail(1, "%s: %s: No such file or directory", tool, p)
		}
		return "", &r
	}
	if f, ok := x.files()[path.Clean(p)]; ok {
		return f.Content, nil
	}
	if x.isDir(path.Clean(p)) {
		r = fail(1, "%s: %s: Is a directory", tool, p)
	} else {
		r = fail(1, "%s: %s: No such file or directory", tool, p)
	}
	return "", &r
}

// checkWrite says why p cannot be written, as the shell or tool would, or nil.
func (x *execCtx) checkWrite(tool, p string) *result {
	var r result
	if fp, found, blocked := x.dataPath(tool, p); blocked != nil {
		return blocked
	} else if found {
		switch {
		case fp.isDir():
			r = fail(1, "%s: %s: Is a directory", tool, p)
		case path.Dir(fp.rel) != "/" && !hasKey(fp.files(), path.Dir(fp.rel)+"/"):
			r = fail(1, "%s: %s: No such file or directory", tool, p)
		default:
			return nil
		}
		return &r
	}
	switch {
	case !writablePath(p):
		r = fail(2, "cloudsim: %s: writing files is simulated only under /etc and on data file systems", p)
	case generatedFiles[p] != nil:
		r = fail(2, "cloudsim: %s is kept by the simulated host's tools; writing it is not simulated", p)
	case x.isDir(p):
		r = fail(1, "%s: %s: Is a directory", tool, p)
	case !x.isDir(path.Dir(p)):
		r = fail(1, "%s: %s: No such file or directory", tool, p)
	default:
		return nil
	}
	return &r
}

// writeFile replaces (or with add, appends to, creating it) a file the caller checked with
// checkWrite.
func (x *execCtx) writeFile(p, content string, add bool) *result {
	if fp, found, blocked := x.dataPath("_script.sh", p); blocked != nil {
		return blocked
	} else if found {
		return fp.writeFile("_script.sh", p, content, add)
	}
	files := x.files()
	if f := files[p]; f != nil && add {
		content = f.Content + content
	}
	if len(content) > maxFileSize {
		r := fail(1, "cloudsim: %s: file too large (%d bytes)", p, len(content))
		return &r
	}
	files[p] = &hostFile{Content: content, Modified: x.now}
	x.s.markDirty()
	return nil
}

// cmdCat prints files, or its input.
func cmdCat(x *execCtx, args []string, stdin string) result {
	if len(args) == 0 {
		return ok(stdin)
	}
	var b strings.Builder
	for _, f := range args {
		if f == "-" {
			b.WriteString(stdin)
			continue
		}
		content, errRes := x.readFile("cat", f)
		if errRes != nil {
			return result{out: b.String(), err: errRes.err, code: errRes.code}
		}
		b.WriteString(content)
	}
	return ok(b.String())
}

// cmdCmp compares two files (- is the input): exit 0 when equal, 1 when they differ, 2 when
// one cannot be read.
func cmdCmp(x *execCtx, args []string, stdin string) result {
	silent := false
	var names []string
	for _, a := range args {
		switch {
		case a == "-s" || a == "--silent" || a == "--quiet":
			silent = true
		case strings.HasPrefix(a, "-") && a != "-":
			return fail(2, "cmp: option %s is not simulated", a)
		default:
			names = append(names, a)
		}
	}
	if len(names) != 2 {
		return fail(2, "cmp: only `cmp [-s] FILE1 FILE2` is simulated")
	}
	var contents [2]string
	for i, n := range names {
		if n == "-" {
			contents[i] = stdin
			continue
		}
		c, errRes := x.readFile("cmp", n)
		if errRes != nil {
			if silent {
				return result{code: 2}
			}
			return fail(2, "%s", strings.TrimSuffix(errRes.err, "\n"))
		}
		contents[i] = c
	}
	a, b := contents[0], contents[1]
	if a == b {
		return ok("")
	}
	if silent {
		return result{code: 1}
	}
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	if n == len(a) || n == len(b) {
		short := names[0]
		if n == len(b) {
			short = names[1]
		}
		return result{err: fmt.Sprintf("cmp: EOF on %s after byte %d\n", short, n), code: 1}
	}
	line := strings.Count(a[:n], "\n") + 1
	return result{out: fmt.Sprintf("%s %s differ: byte %d, line %d\n", names[0], names[1], n+1, line), code: 1}
}

// cmdMv renames a file: the way to put a new configuration file in place at once.
func cmdMv(x *execCtx, args []string, _ string) result {
	var pos []string
	for _, a := range args {
		switch {
		case a == "-f" || a == "--force":
		case strings.HasPrefix(a, "-"):
			return fail(1, "mv: option %s is not simulated", a)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return fail(1, "mv: only `mv SOURCE DEST` is simulated")
	}
	src, dst := pos[0], pos[1]
	if x.isDir(dst) {
		dst = path.Join(dst, path.Base(src))
	}
	files := x.files()
	f, found := files[src]
	if !found {
		if x.isDir(src) {
			return fail(1, "cloudsim: mv of directory %s is not simulated", src)
		}
		return fail(1, "mv: cannot stat '%s': No such file or directory", src)
	}
	if r := x.checkWrite("mv", dst); r != nil {
		return *r
	}
	if !writablePath(src) {
		return fail(2, "cloudsim: %s: moving files is simulated only under /etc", src)
	}
	delete(files, src)
	files[dst] = &hostFile{Content: f.Content, Modified: f.Modified}
	x.s.markDirty()
	return ok("")
}

// cmdRm removes files (never directories: -r is not simulated).
func cmdRm(x *execCtx, args []string, _ string) result {
	force := false
	var names []string
	for _, a := range args {
		switch {
		case a == "-f" || a == "--force":
			force = true
		case strings.HasPrefix(a, "-"):
			return fail(1, "rm: option %s is not simulated", a)
		default:
			names = append(names, a)
		}
	}
	if len(names) == 0 && !force {
		return fail(1, "rm: missing operand")
	}
	files := x.files()
	for _, n := range names {
		if fp, found, blocked := x.dataPath("rm", n); blocked != nil {
			return *blocked
		} else if found {
			if r := fp.remove(n, force); r != nil {
				return *r
			}
			continue
		}
		switch {
		case x.isDir(n):
			return fail(1, "rm: cannot remove '%s': Is a directory", n)
		case files[n] == nil && force:
		case files[n] == nil:
			return fail(1, "rm: cannot remove '%s': No such file or directory", n)
		case !writablePath(n):
			return fail(2, "cloudsim: %s: removing files is simulated only under /etc", n)
		default:
			delete(files, n)
			x.s.markDirty()
		}
	}
	return ok("")
}

// cmdMkdir makes directories (anywhere: mount points live outside /etc).
func cmdMkdir(x *execCtx, args []string, _ string) result {
	parents := false
	var dirs []string
	for _, a := range args {
		switch {
		case a == "-p" || a == "--parents":
			parents = true
		case strings.HasPrefix(a, "-"):
			return fail(1, "mkdir: option %s is not simulated", a)
		default:
			dirs = append(dirs, a)
		}
	}
	if len(dirs) == 0 {
		return fail(1, "mkdir: missing operand")
	}
	files := x.files()
	for _, d := range dirs {
		if !path.IsAbs(d) || path.Clean(d) != strings.TrimSuffix(d, "/") && d != "/" {
			return fail(2, "cloudsim: mkdir of %s is not simulated (only clean absolute paths)", d)
		}
		d = path.Clean(d)
		if fp, found, blocked := x.dataPath("mkdir", d); blocked != nil {
			return *blocked
		} else if found {
			if r := fp.mkdir(d, parents); r != nil {
				return *r
			}
			continue
		}
		var missing []string
		for p := d; !x.h.Dirs[p]; p = path.Dir(p) {
			if files[p] != nil {
				return fail(1, "mkdir: cannot create directory '%s': Not a directory", d)
			}
			missing = append(missing, p)
		}
		switch {
		case len(missing) == 0 && !parents:
			return fail(1, "mkdir: cannot create directory '%s': File exists", d)
		case len(missing) > 1 && !parents:
			return fail(1, "mkdir: cannot create directory '%s': No such file or directory", d)
		}
		for _, p := range missing {
			x.h.Dirs[p] = true
		}
		if len(missing) > 0 {
			x.s.markDirty()
		}
	}
	return ok("")
}

// cmdLs lists a directory of the table, or /dev/disk/by-id. Anything else is refused rather
// than invented.
func cmdLs(x *execCtx, args []string, _ string) result {
	long := false
	var dirs []string
	for _, a := range args {
		switch {
		case a == "-l" || a == "-la" || a == "-al":
			long = true
		case a == "-1" || a == "-a":
		case strings.HasPrefix(a, "-"):
			return fail(2, "ls: option %s is not simulated", a)
		default:
			dirs = append(dirs, a)
		}
	}
	if len(dirs) != 1 {
		return fail(2, "cloudsim: only `ls [-l] DIR` of one directory is simulated")
	}
	dir := path.Clean(dirs[0])
	switch {
	case dir == "/dev/disk/by-id":
		return x.lsByID(long)
	case strings.HasPrefix(dir, "/dev") || strings.HasPrefix(dir, "/proc"):
		return fail(2, "cloudsim: listing %s is not simulated", dirs[0])
	}
	if fp, found, blocked := x.dataPath("ls", dir); blocked != nil {
		return *blocked
	} else if found {
		return fp.ls(dirs[0], long)
	}
	switch {
	case x.files()[dir] != nil:
		return x.lsEntries([]string{dir}, long)
	case !x.isDir(dir):
		return fail(2, "ls: cannot access '%s': No such file or directory", dirs[0])
	}
	var names []string
	for p := range x.files() {
		if path.Dir(p) == dir {
			names = append(names, p)
		}
	}
	for p := range x.h.Dirs {
		if p != dir && path.Dir(p) == dir {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	return x.lsEntries(names, long)
}

func (x *execCtx) lsEntries(paths []string, long bool) result {
	var b strings.Builder
	if long {
		b.WriteString("total 0\n")
	}
	for _, p := range paths {
		name := path.Base(p)
		if !long {
			b.WriteString(name + "\n")
			continue
		}
		if f := x.files()[p]; f != nil {
			fmt.Fprintf(&b, "-rw-r--r-- 1 root root %d %s %s\n", len(f.Content), f.Modified.UTC().Format("Jan _2 15:04"), name)
		} else {
			fmt.Fprintf(&b, "drwxr-xr-x 2 root root 4096 %s %s\n", x.h.BootedAt.UTC().Format("Jan _2 15:04"), name)
		}
	}
	return ok(b.String())
}
