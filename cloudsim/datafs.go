// Files on data file systems: a path on a host lives in the host's own table (files.go: /etc
// and the directories of the root disk), on a data file system mounted on the host (a volume,
// a DRBD device or an md array — its files are written on the volume, travel with it and are
// replicated by DRBD), or under an NFS mount of a file server's export (the server's data file
// system: a mount whose server is gone hangs, nfsclient.go). touch, tee, stat, test, df and the
// file tools of files.go (cat, redirections, ls, rm, mkdir) reach all three.

package cloudsim

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// Bounds of what a data file system holds in the simulation: probes and small files.
const (
	maxDataFiles    = 1000
	maxDataFileSize = 64 << 10
)

// fsPath is a path on a data file system.
type fsPath struct {
	srv *execCtx // the host whose file system holds it: this one, or the NFS server
	bd  blockDev // the file system's device there
	rel string   // the path inside the file system, "/" its root
	// nfsMount is the client's mount point when the path was reached over NFS.
	nfsMount string
}

// dataPath locates p on a data file system: found false means the host's own table. A stale
// NFS mount makes the caller hang (blocked is x.hang()'s result: return it at once); a
// file system whose device is gone is an I/O error.
func (x *execCtx) dataPath(tool, p string) (fp fsPath, found bool, blocked *result) {
	p = path.Clean(p)
	mp, m, ok := x.mountOf(p)
	if !ok {
		return fsPath{}, false, nil
	}
	if m.isNFS() {
		srv, serverPath, why := x.s.nfsTarget(x.h, m, x.now)
		switch why {
		case "":
		case nfsStaleHandle:
			r := fail(1, "%s: cannot access '%s': Stale file handle", tool, p)
			return fsPath{}, true, &r
		default:
			r := x.hang()
			return fsPath{}, true, &r
		}
		fp, found, blocked := srv.dataPath(tool, path.Join(serverPath, strings.TrimPrefix(p, mp)))
		fp.nfsMount = mp
		if !found && blocked == nil {
			// The export is on the server's root disk: not simulated; nfsTarget refuses that.
			r := fail(1, "%s: %s: Input/output error", tool, p)
			return fsPath{}, true, &r
		}
		return fp, true, blocked
	}
	bd, why := x.openDevice(m.Device, false)
	if why != "" {
		r := fail(1, "%s: %s: Input/output error", tool, p)
		return fsPath{}, true, &r
	}
	return fsPath{srv: x, bd: bd, rel: path.Join("/", strings.TrimPrefix(p, mp))}, true, nil
}

// mountOf is the mount that holds p: the longest mount point above it, the root disk excepted.
func (x *execCtx) mountOf(p string) (string, mountEntry, bool) {
	best := ""
	for mp := range x.h.Mounts {
		if mp != "/" && (p == mp || strings.HasPrefix(p, mp+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		return "", mountEntry{}, false
	}
	return best, x.h.Mounts[best], true
}

// files is what the file system holds: path → content; a directory is its path with a
// trailing slash and no content. The root always exists.
func (fp fsPath) files() map[string]string {
	return fp.srv.content(fp.bd).Files
}

func (fp fsPath) isDir() bool {
	return fp.rel == "/" || fp.files() != nil && hasKey(fp.files(), fp.rel+"/")
}

func (fp fsPath) read() (string, bool) {
	c, ok := fp.files()[fp.rel]
	return c, ok
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// change writes the file system: on its device (and through DRBD to the peer), every member
// of an array alike.
func (fp fsPath) change(apply func(files map[string]string) *result) *result {
	files := maps.Clone(fp.files())
	if files == nil {
		files = map[string]string{}
	}
	if r := apply(files); r != nil {
		return r
	}
	if len(files) > maxDataFiles {
		r := fail(1, "cloudsim: %s: more than %d files on a data file system are not simulated", fp.rel, maxDataFiles)
		return &r
	}
	array := fp.bd.array != nil
	fp.srv.write(fp.bd, func(d *blockData) {
		if !array {
			d.Files = maps.Clone(files)
		} else if d.MD != nil {
			d.MD.Files = maps.Clone(files)
		}
	})
	return nil
}

// writeFile writes a file on the data file system: its directory must exist.
func (fp fsPath) writeFile(tool, shown, content string, add bool) *result {
	return fp.change(func(files map[string]string) *result {
		var r result
		switch {
		case fp.isDir():
			r = fail(1, "%s: %s: Is a directory", tool, shown)
		case path.Dir(fp.rel) != "/" && !hasKey(files, path.Dir(fp.rel)+"/"):
			r = fail(1, "%s: %s: No such file or directory", tool, shown)
		default:
			if add {
				content = files[fp.rel] + content
			}
			if len(content) > maxDataFileSize {
				r = fail(1, "cloudsim: %s: files above %d bytes on a data file system are not simulated", shown, maxDataFileSize)
				return &r
			}
			files[fp.rel] = content
			return nil
		}
		return &r
	})
}

// list is what ls shows of a directory: the names under it, sorted.
func (fp fsPath) list() []string {
	prefix := strings.TrimSuffix(fp.rel, "/") + "/"
	var names []string
	for k := range fp.files() {
		rest, ok := strings.CutPrefix(k, prefix)
		if ok && rest != "" && !strings.Contains(strings.TrimSuffix(rest, "/"), "/") {
			names = append(names, strings.TrimSuffix(rest, "/"))
		}
	}
	slices.Sort(names)
	return names
}

// remove deletes a file (rm).
func (fp fsPath) remove(shown string, force bool) *result {
	return fp.change(func(files map[string]string) *result {
		var r result
		switch {
		case fp.isDir():
			r = fail(1, "rm: cannot remove '%s': Is a directory", shown)
		case !hasKey(files, fp.rel) && force:
			return nil
		case !hasKey(files, fp.rel):
			r = fail(1, "rm: cannot remove '%s': No such file or directory", shown)
		default:
			delete(files, fp.rel)
			return nil
		}
		return &r
	})
}

// mkdir makes a directory, with parents its missing parents too.
func (fp fsPath) mkdir(shown string, parents bool) *result {
	return fp.change(func(files map[string]string) *result {
		var missing []string
		for d := fp.rel; d != "/" && !hasKey(files, d+"/"); d = path.Dir(d) {
			if hasKey(files, d) {
				r := fail(1, "mkdir: cannot create directory '%s': Not a directory", shown)
				return &r
			}
			missing = append(missing, d)
		}
		var r result
		switch {
		case len(missing) == 0 && !parents:
			r = fail(1, "mkdir: cannot create directory '%s': File exists", shown)
		case len(missing) > 1 && !parents:
			r = fail(1, "mkdir: cannot create directory '%s': No such file or directory", shown)
		default:
			for _, d := range missing {
				files[d+"/"] = ""
			}
			return nil
		}
		return &r
	})
}

// ls lists a directory or names a file.
func (fp fsPath) ls(shown string, long bool) result {
	files := fp.files()
	var names []string
	switch {
	case fp.isDir():
		names = fp.list()
	case hasKey(files, fp.rel):
		names = []string{path.Base(fp.rel)}
	default:
		return fail(2, "ls: cannot access '%s': No such file or directory", shown)
	}
	var b strings.Builder
	if long {
		b.WriteString("total 0\n")
	}
	dir := fp.rel
	if !fp.isDir() {
		dir = path.Dir(fp.rel)
	}
	for _, n := range names {
		if !long {
			b.WriteString(n + "\n")
			continue
		}
		if c, isFile := files[path.Join(dir, n)]; isFile {
			fmt.Fprintf(&b, "-rw-r--r-- 1 root root %d Jan  1 00:00 %s\n", len(c), n)
		} else {
			fmt.Fprintf(&b, "drwxr-xr-x 2 root root 4096 Jan  1 00:00 %s\n", n)
		}
	}
	return ok(b.String())
}

// cmdTouch creates files that do not exist (data file systems, /etc) and leaves the others.
func cmdTouch(x *execCtx, args []string, _ string) result {
	var names []string
	for _, a := range args {
		switch {
		case a == "-c" || a == "-m" || a == "-a":
		case strings.HasPrefix(a, "-"):
			return fail(1, "touch: option %s is not simulated", a)
		default:
			names = append(names, a)
		}
	}
	if len(names) == 0 {
		return fail(1, "touch: missing file operand")
	}
	for _, n := range names {
		if r := x.appendTo("touch", n, ""); r != nil {
			return *r
		}
	}
	return ok("")
}

// appendTo appends content to a file wherever it lives (creating it): what touch and >> do.
func (x *execCtx) appendTo(tool, p, content string) *result {
	if r := x.checkWrite(tool, p); r != nil {
		return r
	}
	return x.writeFile(p, content, true)
}

// cmdTee copies its input to its output and to the files.
func cmdTee(x *execCtx, args []string, stdin string) result {
	add := false
	var names []string
	for _, a := range args {
		switch {
		case a == "-a" || a == "--append":
			add = true
		case strings.HasPrefix(a, "-"):
			return fail(1, "tee: option %s is not simulated", a)
		default:
			names = append(names, a)
		}
	}
	for _, n := range names {
		if r := x.checkWrite("tee", n); r != nil {
			return result{out: stdin, err: r.err, code: 1}
		}
		if r := x.writeFile(n, stdin, add); r != nil {
			return result{out: stdin, err: r.err, code: 1}
		}
	}
	return ok(stdin)
}

// pathKind says what is at p: "file", "dir" or "" (nothing), with the content of a file; a
// stale NFS mount blocks (blocked is then the caller's result).
func (x *execCtx) pathKind(tool, p string) (kind, content string, blocked *result) {
	if gen, ok := generatedFiles[p]; ok {
		return "file", gen(x), nil
	}
	fp, found, blocked := x.dataPath(tool, p)
	switch {
	case blocked != nil:
		return "", "", blocked
	case found && fp.isDir():
		return "dir", "", nil
	case found:
		c, ok := fp.read()
		if !ok {
			return "", "", nil
		}
		return "file", c, nil
	}
	if f := x.files()[path.Clean(p)]; f != nil {
		return "file", f.Content, nil
	}
	if x.isDir(path.Clean(p)) || x.blockDeviceExists(p) {
		return "dir", "", nil
	}
	return "", "", nil
}

// cmdStat prints a file's name, size and type; -c takes %n %s %F %%.
func cmdStat(x *execCtx, args []string, _ string) result {
	format := ""
	var names []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "-c" || a == "--format") && i+1 < len(args):
			format, i = args[i+1], i+1
		case strings.HasPrefix(a, "-"):
			return fail(1, "stat: option %s is not simulated", a)
		default:
			names = append(names, a)
		}
	}
	if len(names) == 0 {
		return fail(1, "stat: missing operand")
	}
	var b strings.Builder
	for _, n := range names {
		kind, content, blocked := x.pathKind("stat", n)
		if blocked != nil {
			return result{out: b.String(), err: blocked.err, code: blocked.code}
		}
		if kind == "" {
			return result{out: b.String(), err: fmt.Sprintf("stat: cannot statx '%s': No such file or directory\n", n), code: 1}
		}
		size, typ := len(content), "regular file"
		if kind == "dir" {
			size, typ = 4096, "directory"
		}
		if format == "" {
			fmt.Fprintf(&b, "  File: %s\n  Size: %d\t\tBlocks: %d\tIO Block: 4096   %s\n", n, size, (size+511)/512, typ)
			continue
		}
		r := strings.NewReplacer("%n", n, "%s", fmt.Sprint(size), "%F", typ, "%%", "%")
		b.WriteString(r.Replace(format) + "\n")
	}
	return ok(b.String())
}

// cmdTest is test(1) and [: file tests (-e -f -d -s -r -w -x), string tests (-n -z = !=)
// and !. A path under a stale NFS mount blocks, as stat(2) does.
func cmdTest(bracket bool) builtin {
	return func(x *execCtx, args []string, _ string) result {
		if bracket {
			if len(args) == 0 || args[len(args)-1] != "]" {
				return fail(2, "_script.sh: [: missing `]'")
			}
			args = args[:len(args)-1]
		}
		negate := false
		if len(args) > 0 && args[0] == "!" {
			negate, args = true, args[1:]
		}
		truth := func(b bool) result {
			if b != negate {
				return result{}
			}
			return result{code: 1}
		}
		switch {
		case len(args) == 0:
			return truth(false)
		case len(args) == 1:
			return truth(args[0] != "")
		case len(args) == 2 && (args[0] == "-n" || args[0] == "-z"):
			return truth((args[1] == "") == (args[0] == "-z"))
		case len(args) == 3 && (args[1] == "=" || args[1] == "==" || args[1] == "!="):
			return truth((args[0] == args[2]) == (args[1] != "!="))
		case len(args) == 2 && len(args[0]) == 2 && strings.Contains("efdsrwx", args[0][1:]) && args[0][0] == '-':
			kind, content, blocked := x.pathKind("test", args[1])
			if blocked != nil {
				return *blocked
			}
			switch args[0] {
			case "-f":
				return truth(kind == "file")
			case "-d":
				return truth(kind == "dir")
			case "-s":
				return truth(kind == "dir" || kind == "file" && content != "")
			case "-w":
				return truth(kind != "" && x.writable(args[1]))
			default:
				return truth(kind != "")
			}
		}
		return fail(2, "cloudsim: test %s is not simulated", strings.Join(args, " "))
	}
}

// writable is whether a script may write p (root may write anything a file system lets it).
func (x *execCtx) writable(p string) bool {
	if _, found, _ := x.dataPath("test", p); found {
		return true
	}
	return writablePath(p) || x.isDir(path.Clean(p)) && path.Clean(p) != "/"
}

// cmdDf lists the mounted file systems with their sizes: all, or those of the paths given.
// An NFS mount whose server is gone blocks it, as statfs(2) does.
func cmdDf(x *execCtx, args []string, _ string) result {
	human := false
	var paths []string
	for _, a := range args {
		switch {
		case a == "-h" || a == "-H":
			human = true
		case a == "-P" || a == "-k" || a == "-T":
		case strings.HasPrefix(a, "-"):
			return fail(1, "df: option %s is not simulated", a)
		default:
			paths = append(paths, a)
		}
	}
	mounts := sortedKeys(x.h.Mounts)
	if len(paths) > 0 {
		mounts = nil
		for _, p := range paths {
			mp, _, ok := x.mountOf(path.Clean(p))
			if !ok {
				mp = "/"
			}
			mounts = append(mounts, mp)
		}
	}
	var b strings.Builder
	b.WriteString("Filesystem     1K-blocks    Used Available Use% Mounted on\n")
	if human {
		b.Reset()
		b.WriteString("Filesystem      Size  Used Avail Use% Mounted on\n")
	}
	for _, mp := range mounts {
		m := x.h.Mounts[mp]
		gib := int64(8)
		if mp != "/" {
			fp, _, blocked := x.dataPath("df", mp)
			if blocked != nil {
				return result{out: b.String(), err: blocked.err, code: blocked.code}
			}
			gib = 0
			for _, v := range fp.bd.volumesOf() {
				gib += int64(v.SizeGiB)
			}
		}
		if human {
			fmt.Fprintf(&b, "%-15s %4dG   1G %4dG   1%% %s\n", m.Device, gib, max(gib-1, 0), mp)
		} else {
			fmt.Fprintf(&b, "%-15s %9d %7d %9d   1%% %s\n", m.Device, gib<<20, 1<<20, (gib<<20)-(1<<20), mp)
		}
	}
	return ok(b.String())
}
