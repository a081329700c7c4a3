// Packages: what the image ships and the roles install, apt-get, dpkg-query, openssl version,
// and anyops-bootstrap, the cluster build step.

package cloudsim

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

// Package versions: what the image ships, and what an upgrade brings (the Heartbleed fix).
var (
	basePackages = map[string]string{
		"openssl": "1.0.1f-1ubuntu2", "libssl1.0.0": "1.0.1f-1ubuntu2", "libssl-dev": "1.0.1f-1ubuntu2", "openssh-server": "1:6.6p1-2ubuntu1",
		"amazon-ssm-agent": "2.3.1319.0-1", "drbd-utils": "9.15.0-1", "mdadm": "3.2.5-5ubuntu4",
		"nfs-kernel-server": "1:1.2.8-6ubuntu1", "e2fsprogs": "1.42.9-3ubuntu1",
	}
	upgradedPackages = map[string]string{
		"openssl": "1.0.1f-1ubuntu2.2", "libssl1.0.0": "1.0.1f-1ubuntu2.2", "libssl-dev": "1.0.1f-1ubuntu2.2", "nginx": "1.4.6-1ubuntu3.1",
		"openssh-server": "1:6.6p1-2ubuntu2",
	}
	// rolePackages and roleServices are what `anyops-bootstrap` installs and starts per role.
	rolePackages = map[string]map[string]string{
		"file":    {"nfs-kernel-server": "1:1.2.8-6ubuntu1"},
		"backup":  {"nfs-kernel-server": "1:1.2.8-6ubuntu1"},
		"web":     {"nginx": "1.4.6-1ubuntu3", "uwsgi": "2.0.4-1"},
		"console": {"python-tornado": "3.1.1-1ubuntu2"},
		"task":    {"cron": "3.0pl1-124ubuntu2"},
	}
	roleServices = map[string][]string{
		"file": {"nfs-server"}, "backup": {"nfs-server"}, "web": {"nginx", "uwsgi"},
		"console": {"tornado"}, "task": {"cron"},
	}
	// servicePackage says which package a service needs.
	servicePackage = map[string]string{
		"nfs-server": "nfs-kernel-server", "nginx": "nginx", "uwsgi": "uwsgi", "tornado": "python-tornado",
		"cron": "cron", "ssh": "openssh-server", "amazon-ssm-agent": "amazon-ssm-agent", "drbd": "drbd-utils",
	}
)

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
	if f := x.s.aptFailure(h.InstanceID); f != nil {
		return aptFetchFailure(x, f, pos[0])
	}
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
					h.startService(svc, x.now, 0)
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
		x.h.startService(svc, x.now, 0)
	}
	x.h.Bootstrapped = true
	x.s.event(x.now, "host.bootstrap", x.h.InstanceID, "%s bootstrapping as %s (takes %s)", x.h.Hostname, role, bootstrapTime)
	return result{out: fmt.Sprintf("bootstrapped %s as %s\n", x.h.Hostname, role), dur: bootstrapTime}
}

// aptFetchFailure is apt-get on a host with an apt-failure fault: the archive cannot be
// reached, so update leaves the lists as they were and install downloads nothing; both exit
// 100, as apt does, and change nothing.
func aptFetchFailure(x *execCtx, f *Fault, op string) result {
	x.s.event(x.now, "host.apt-failed", x.h.InstanceID, "apt-get %s failed on %s (fault %s)", op, x.h.Hostname, f.ID)
	const archive = "http://security.ubuntu.com/ubuntu"
	if op == "update" {
		return result{out: "Err:1 " + archive + " trusty-security InRelease\n",
			err: "W: Failed to fetch " + archive + "/dists/trusty-security/InRelease  Could not resolve 'security.ubuntu.com'\n" +
				"E: Some index files failed to download. They have been ignored, or old ones used instead.\n",
			code: 100, dur: 20 * time.Second}
	}
	return result{out: "Reading package lists... Done\n",
		err: "E: Failed to fetch " + archive + "/pool/main/o/openssl/libssl1.0.0_1.0.1f-1ubuntu2.2_amd64.deb  Could not resolve 'security.ubuntu.com'\n" +
			"E: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?\n",
		code: 100, dur: 30 * time.Second}
}
