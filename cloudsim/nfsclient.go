// NFS clients: `mount -t nfs4 NAME:/export DIR` on web, console and task hosts, `umount -f -l`,
// and the health of every mount and of every file service, logged as events at the moment it
// changes. A mount binds to the address its server's name resolved to when it was made, as
// the kernel's does: after the record moves, an old mount stays on the old server. While the
// server behind a mount cannot serve it (gone, stopped, unreachable, nfs-server down, the path
// not exported, its file system not mounted or its DRBD device not Primary, its md array not
// running) the mount is stale and, as a hard mount, every call on it blocks: the command hangs
// until `timeout` kills it or SSM's executionTimeout ends the script. `umount -f -l` still
// detaches it.

package cloudsim

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// nfsStaleHandle is nfsTarget's reason when another server now has the mount's address: its
// file handles mean nothing there (ESTALE), so calls fail at once instead of blocking.
const nfsStaleHandle = "stale file handle"

// nfsMountRetry is how long mount.nfs keeps trying a server that does not answer (its retry=
// option, 2 minutes for a foreground mount).
const nfsMountRetry = 2 * time.Minute

func (m mountEntry) isNFS() bool { return m.FSType == "nfs4" || m.FSType == "nfs" }

// hang blocks the running command, as a call on a hard NFS mount whose server is gone does:
// nothing after it runs, and the script ends only when its time runs out.
func (x *execCtx) hang() result {
	x.hung = true
	return result{}
}

// hangForever is how long a blocked script would take: beyond any executionTimeout.
const hangForever = 1000 * time.Hour

// nfsTarget is the server side of an NFS mount, or why it cannot serve now ("" when it can):
// the server's context, and the server's path that the mount's root is.
func (s *Sim) nfsTarget(client *host, m mountEntry, at time.Time) (*execCtx, string, string) {
	in := s.instanceByIP(m.Server)
	switch {
	case !s.reachable(client.InstanceID):
		return nil, "", "the client is down"
	case in == nil:
		return nil, "", "no server has " + m.Server
	case in.ID != m.ServerInstance:
		return nil, "", nfsStaleHandle
	case !s.reachable(in.ID):
		return nil, "", "the server does not answer"
	}
	h := s.st.Hosts[in.ID]
	if h == nil || h.Services["nfs-server"] != "active" {
		return nil, "", "nfs-server is not running"
	}
	clientIP := ""
	if c := s.st.Instances[client.InstanceID]; c != nil {
		clientIP = c.PrivateIP
	}
	if _, ok := exportFor(h, m.Export, clientIP, client.Hostname); !ok {
		return nil, "", m.Export + " is not exported to " + clientIP
	}
	x := &execCtx{s: s, h: h, in: in, now: at}
	if fp, found, blocked := x.dataPath("nfsd", m.Export); !found || blocked != nil || fp.nfsMount != "" {
		return nil, "", "the file system of " + m.Export + " is not serving"
	}
	return x, m.Export, ""
}

// exportFor is the options of the export that gives path to a client, and whether there is one:
// the longest exported path at or above path whose client spec (*, an address, a CIDR block or
// the client's host name) matches.
func exportFor(h *host, p, clientIP, clientName string) (string, bool) {
	best, opts := "", ""
	for key, o := range h.Exports {
		spec, exp, _ := strings.Cut(key, ":")
		if !(p == exp || strings.HasPrefix(p, strings.TrimSuffix(exp, "/")+"/")) || len(exp) <= len(best) {
			continue
		}
		if clientMatches(spec, clientIP, clientName) {
			best, opts = exp, o
		}
	}
	return opts, best != ""
}

func clientMatches(spec, ip, name string) bool {
	if spec == "*" || spec == ip || spec == name {
		return true
	}
	prefix, err := netip.ParsePrefix(spec)
	addr, aerr := netip.ParseAddr(ip)
	return err == nil && aerr == nil && prefix.Contains(addr)
}

// nfsOptions are the mount options the simulated mount.nfs4 takes; anything else is refused.
var nfsOptions = map[string]bool{"rw": true, "ro": true, "hard": true, "intr": true, "nointr": true, "vers": true, "nfsvers": true,
	"minorversion": true, "proto": true, "port": true, "timeo": true, "retrans": true, "retry": true, "noatime": true,
	"relatime": true, "_netdev": true, "nofail": true, "rsize": true, "wsize": true, "sec": true, "actimeo": true, "noac": true,
	"lookupcache": true, "nosuid": true, "nodev": true, "noexec": true, "noresvport": true, "defaults": true}

// parseNFSMount reads the source and options of `mount -t nfs4`: host:/path, and the retry
// time and NFS version the options give.
func parseNFSMount(source, options string) (host, export string, retry time.Duration, vers string, err error) {
	host, export, found := strings.Cut(source, ":")
	if !found || host == "" || !path.IsAbs(export) || path.Clean(export) != export || strings.ContainsAny(host, "/[]@") {
		return "", "", 0, "", fmt.Errorf("mount.nfs4: remote share not in 'host:dir' format")
	}
	retry, vers = nfsMountRetry, "4.2"
	for _, o := range strings.Split(options, ",") {
		if o == "" {
			continue
		}
		k, v, _ := strings.Cut(o, "=")
		switch {
		case k == "soft":
			return "", "", 0, "", fmt.Errorf("cloudsim: soft NFS mounts are not simulated (a hard mount blocks while its server is gone)")
		case !nfsOptions[k]:
			return "", "", 0, "", fmt.Errorf("mount.nfs4: an incorrect mount option was specified: %s", o)
		case k == "retry":
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 0 || n > 10000 {
				return "", "", 0, "", fmt.Errorf("mount.nfs4: an incorrect mount option was specified: %s", o)
			}
			retry = time.Duration(n) * time.Minute
		case k == "vers" || k == "nfsvers":
			switch v {
			case "4":
				vers = "4.2" // the highest minor version both sides speak
			case "4.0", "4.1", "4.2":
				vers = v
			default:
				return "", "", 0, "", fmt.Errorf("cloudsim: NFS version %s is not simulated (only 4.x)", v)
			}
		}
	}
	return host, export, retry, vers, nil
}

// mountNFS is `mount -t nfs4 SOURCE DIR`: the source's host is resolved now, and the mount
// binds to that address for as long as it exists.
func (x *execCtx) mountNFS(source, dir, options string) result {
	host, export, retry, vers, err := parseNFSMount(source, options)
	if err != nil {
		return fail(32, "%v", err)
	}
	if _, busy := x.h.Mounts[dir]; busy {
		return fail(32, "mount.nfs4: %s is busy or already mounted", dir)
	}
	if !x.isDir(dir) {
		if _, found, blocked := x.dataPath("mount.nfs4", dir); blocked != nil {
			return *blocked
		} else if !found {
			return fail(32, "mount.nfs4: mount point %s does not exist", dir)
		}
	}
	ips := x.s.resolve(x.h, host, x.now)
	if len(ips) == 0 {
		return fail(32, "mount.nfs4: Failed to resolve server %s: Name or service not known", host)
	}
	m := mountEntry{Device: source, FSType: "nfs4", Server: ips[0], Export: export}
	srv := x.s.instanceByIP(ips[0])
	switch {
	case srv == nil || !x.s.reachable(srv.ID):
		r := fail(32, "mount.nfs4: Connection timed out")
		r.dur = retry
		return r
	case x.s.st.Hosts[srv.ID].Services["nfs-server"] != "active":
		r := fail(32, "mount.nfs4: Connection refused")
		r.dur = retry
		return r
	}
	m.ServerInstance = srv.ID
	if _, ok := exportFor(x.s.st.Hosts[srv.ID], export, x.in.PrivateIP, x.h.Hostname); !ok {
		return fail(32, "mount.nfs4: access denied by server while mounting %s", source)
	}
	if _, _, why := x.s.nfsTarget(x.h, m, x.now); why != "" {
		return x.hang() // the server answers but cannot read the export's file system
	}
	clientOpts := "rw"
	if slices.Contains(strings.Split(options, ","), "ro") {
		clientOpts = "ro"
	}
	m.Options = fmt.Sprintf("%s,relatime,vers=%s,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=%s,local_lock=none,addr=%s",
		clientOpts, vers, x.in.PrivateIP, ips[0])
	x.h.Mounts[dir] = m
	x.s.nfsClientEvent(x.now, x.h, dir, m, "nfs.client.serving", "mounted")
	return result{dur: time.Second / 10}
}

// umountNFS detaches an NFS mount. A stale one blocks a plain umount (it would flush to the
// server first); -f or -l detach it at once.
func (x *execCtx) umountNFS(dir string, m mountEntry, force, lazy bool) result {
	if !force && !lazy {
		if _, _, why := x.s.nfsTarget(x.h, m, x.now); why != "" && why != nfsStaleHandle {
			return x.hang()
		}
	}
	delete(x.h.Mounts, dir)
	x.s.nfsClientEvent(x.now, x.h, dir, m, "nfs.client.unmounted", map[bool]string{true: "stale", false: "serving"}[m.Stale])
	return ok("")
}

// nfsClientEvent logs a change of a client's mount with what a drill computes from: the
// client, the mount point, the server instance and address, the source as mounted.
func (s *Sim) nfsClientEvent(at time.Time, h *host, dir string, m mountEntry, typ, reason string) {
	s.eventData(at, typ, h.InstanceID, map[string]any{"client": h.InstanceID, "mount": dir, "server": m.ServerInstance,
		"server_ip": m.Server, "source": m.Device, "reason": reason},
		"%s on %s (%s, server %s at %s): %s", dir, h.Hostname, m.Device, m.ServerInstance, m.Server, reason)
}

// nfsHealth re-evaluates at time at every NFS mount and every file service and logs each
// change: nfs.client.stale / nfs.client.serving, nfs.server.down / nfs.server.serving.
// Callers hold s.mu.
func (s *Sim) nfsHealth(at time.Time) {
	for _, hid := range sortedKeys(s.st.Hosts) {
		h := s.st.Hosts[hid]
		for _, mp := range sortedKeys(h.Mounts) {
			m := h.Mounts[mp]
			if !m.isNFS() {
				continue
			}
			_, _, why := s.nfsTarget(h, m, at)
			if stale := why != ""; stale != m.Stale {
				m.Stale = stale
				h.Mounts[mp] = m
				typ := "nfs.client.serving"
				if stale {
					typ = "nfs.client.stale"
				} else {
					why = "the server serves again"
				}
				s.nfsClientEvent(at, h, mp, m, typ, why)
				s.markDirty()
			}
		}
		exports := s.servedExports(h, at)
		if serving := len(exports) > 0; serving != h.NFSServing {
			h.NFSServing = serving
			typ, what := "nfs.server.serving", "serves "+strings.Join(exports, " ")
			if !serving {
				typ, what = "nfs.server.down", "serves nothing"
			}
			s.eventData(at, typ, h.InstanceID, map[string]any{"server": h.InstanceID, "exports": exports}, "file service on %s %s", h.Hostname, what)
			s.markDirty()
		}
	}
}

// servedExports are the paths a host's NFS service can serve now: it is up and running
// nfs-server, and each path is on a data file system whose device serves.
func (s *Sim) servedExports(h *host, at time.Time) []string {
	in := s.st.Instances[h.InstanceID]
	if len(h.Exports) == 0 || in == nil || !s.reachable(in.ID) || h.Services["nfs-server"] != "active" {
		return nil
	}
	x := &execCtx{s: s, h: h, in: in, now: at}
	var out []string
	for _, key := range sortedKeys(h.Exports) {
		_, p, _ := strings.Cut(key, ":")
		if fp, found, blocked := x.dataPath("nfsd", p); found && blocked == nil && fp.nfsMount == "" && !slices.Contains(out, p) {
			out = append(out, p)
			s.drbdServes(h, fp.bd, at) // a promoted replica serves: what it lacked is lost now
		}
	}
	return out
}

// unmountedByDown logs the NFS mounts a host loses when it goes down.
func (s *Sim) unmountedByDown(h *host, at time.Time) {
	for _, mp := range sortedKeys(h.Mounts) {
		if m := h.Mounts[mp]; m.isNFS() {
			s.nfsClientEvent(at, h, mp, m, "nfs.client.unmounted", "the client went down")
		}
	}
}
