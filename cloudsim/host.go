package cloudsim

import (
	"slices"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

// host is the simulated operating system of one instance.
type host struct {
	InstanceID   string            `json:"instance_id"`
	Hostname     string            `json:"hostname"`
	Role         string            `json:"role,omitempty"`
	Bootstrapped bool              `json:"bootstrapped,omitempty"`
	Packages     map[string]string `json:"packages"` // name -> installed version
	Services     map[string]string `json:"services"` // name -> active|inactive|failed
	// Loaded is the libssl version each TLS service loaded when it last started (tls.go).
	Loaded map[string]string `json:"loaded,omitempty"`
	// StartingUntil is when a service that was (re)started answers again.
	StartingUntil map[string]time.Time  `json:"starting_until,omitempty"`
	DRBD          map[string]*drbdRes   `json:"drbd"`
	MD            map[string]*mdArray   `json:"md"`      // /dev/md0 -> array
	Mounts        map[string]mountEntry `json:"mounts"`  // mount point -> what is mounted
	Exports       map[string]string     `json:"exports"` // "client:/path" -> options
	// Files and Dirs are the host's configuration files and directories (files.go); they
	// live on the root disk and survive a reboot.
	Files map[string]*hostFile `json:"files,omitempty"`
	Dirs  map[string]bool      `json:"dirs,omitempty"`
	// DNSCache is the host's resolver cache (dns.go): name → answer, kept for its TTL.
	DNSCache map[string]dnsAnswer `json:"dns_cache,omitempty"`
	// NFSServing is whether the host's file service was last seen serving (nfsclient.go).
	NFSServing bool      `json:"nfs_serving,omitempty"`
	BootedAt   time.Time `json:"booted_at,omitzero"`
	Boots      int       `json:"boots"`
}

type mdArray struct {
	UUID    string   `json:"uuid,omitempty"` // of its superblocks; empty for arrays found by tags
	Level   string   `json:"level"`
	Devices []string `json:"devices"`
	Active  bool     `json:"active"`
}

type mountEntry struct {
	Device string `json:"device"` // a block device, or an NFS mount's source (host:/path) as given
	FSType string `json:"fstype"` // ext4, xfs, nfs4
	// An NFS mount (nfsclient.go) keeps the server address its host resolved to when it was
	// made, the instance that had the address then, the exported path, the options
	// /proc/mounts shows, and whether it was last seen stale.
	Server         string `json:"server,omitempty"`
	ServerInstance string `json:"server_instance,omitempty"`
	Export         string `json:"export,omitempty"`
	Options        string `json:"options,omitempty"`
	Stale          bool   `json:"stale,omitempty"`
}

func newHost(in *instance) *host {
	h := &host{InstanceID: in.ID, Hostname: in.hostname(), Packages: map[string]string{}, Services: map[string]string{},
		DRBD: map[string]*drbdRes{}, MD: map[string]*mdArray{}, Mounts: map[string]mountEntry{}, Exports: map[string]string{}}
	h.Role, _ = in.Tags.get(anyops.TagRole)
	for p, v := range basePackages {
		h.Packages[p] = v
	}
	for _, svc := range []string{"ssh", "amazon-ssm-agent", "drbd"} {
		h.Services[svc] = "inactive"
	}
	// An instance launched with a role runs the role's image: its packages installed, its
	// services started at boot. (anyops-bootstrap, the cluster build step, still takes its
	// time on a new server: it configures the role for its cluster.)
	for p, v := range rolePackages[h.Role] {
		h.Packages[p] = v
	}
	for _, svc := range roleServices[h.Role] {
		h.Services[svc] = "inactive"
	}
	h.Mounts["/"] = mountEntry{Device: rootPartition(in), FSType: "ext4"}
	return h
}

// bootHost runs when an instance reaches running: services start, devices get their names,
// DRBD resources (configured ones, and those of tagged volumes) come up as Secondary, and a
// corrupt boot disk shows itself.
func (s *Sim) bootHost(in *instance, at time.Time) {
	h := s.st.Hosts[in.ID]
	if h == nil {
		h = newHost(in)
		s.st.Hosts[in.ID] = h
	}
	h.BootedAt = at
	h.Boots++
	if in.CorruptOnRestart && h.Boots > 1 {
		in.BootFailedAt = at
		if v := s.st.Volumes[in.RootVolume]; v != nil {
			v.Corrupt = true
		}
		s.event(at, "instance.boot-failed", in.ID, "instance %s: boot disk %s is corrupt; instance status check fails and SSM cannot reach it", in.ID, in.RootVolume)
		return
	}
	for svc := range h.Services {
		h.startService(svc, at, 0)
	}
	h.Mounts = map[string]mountEntry{"/": {Device: rootPartition(in), FSType: "ext4"}}
	h.Exports = map[string]string{}
	h.DNSCache = nil
	for _, md := range h.MD {
		md.Active = false
	}
	s.renameDevices(in)
	for _, id := range sortedKeys(s.st.Volumes) {
		if v := s.st.Volumes[id]; v.Attachment != nil && v.Attachment.InstanceID == in.ID && v.Attachment.State == "attached" {
			s.hostAttached(v, at)
		}
	}
	s.drbdBoot(h, in, at)
}

// hostDown runs when an instance stops or terminates: everything in memory is gone.
func (s *Sim) hostDown(in *instance, at time.Time) {
	h := s.st.Hosts[in.ID]
	if h == nil {
		return
	}
	for svc := range h.Services {
		h.Services[svc] = "inactive"
	}
	for _, r := range h.DRBD {
		for _, c := range r.Peers {
			if c.Connected {
				_, pr := s.drbdPeerOf(c, r.Name)
				s.drbdLostPeer(h, r, c, pr, at)
			}
		}
		s.saveDRBDMeta(r)
		r.Up, r.Role, r.Syncing = false, "Secondary", false
	}
	for _, md := range h.MD {
		md.Active = false
	}
	s.unmountedByDown(h, at)
	h.Mounts = map[string]mountEntry{}
	h.Exports = map[string]string{}
}

// Fixture tags: a volume tagged FixtureTagDRBDRole (with anyops:drbd-resource naming the
// resource and anyops:drbd-peer the instance of the other side) backs a DRBD resource that
// comes up by itself when attached, as on a host configured beforehand; volumes tagged
// FixtureTagRAID=mdN without md superblocks stand in for members of an array made elsewhere.
// Only tests use them: the fleet's own DRBD and md are set up with files and tools, as on real
// hosts.
const (
	FixtureTagDRBDRole = "cloudsim:drbd-role" // primary | secondary
	FixtureTagDRBDDisk = "cloudsim:drbd-disk" // UpToDate: the pair starts in sync
	FixtureTagRAID     = "cloudsim:raid"      // mdN
)

// hostAttached runs when the guest sees a newly attached volume: the device gets its name,
// and a DRBD resource configured by fixture tags comes up; otherwise `drbdadm up` does it.
func (s *Sim) hostAttached(v *volume, at time.Time) {
	h := s.st.Hosts[v.Attachment.InstanceID]
	in := s.st.Instances[v.Attachment.InstanceID]
	if h == nil || in == nil || in.State != stateRunning {
		return
	}
	s.nameDevice(in, v)
	name, ok := v.Tags.get(anyops.TagDRBDResource)
	if !ok {
		return
	}
	role, auto := v.Tags.get(FixtureTagDRBDRole)
	if !auto {
		return
	}
	r := h.DRBD[name]
	if r != nil {
		// Known from before a reboot: DRBD comes back as Secondary, as the init script does.
		r.Up, r.Role = true, "Secondary"
	} else {
		primary := strings.EqualFold(role, "primary")
		r = s.newDRBDRes(h, name, v, primary)
		r.Up, r.Disk = true, "Inconsistent"
		if primary {
			r.Disk, r.Role, r.PrimarySince = "UpToDate", "Primary", at
		}
		if d, _ := v.Tags.get(FixtureTagDRBDDisk); d == "UpToDate" {
			r.Disk = "UpToDate"
		}
		if v.Data.DRBD == nil {
			// The pair's two fixture volumes share one generation when it starts in sync
			// (derived from the resource's name, so both sides agree); a primary alone has
			// one of its own, and a secondary that is not in sync has none yet.
			gen := drbdJustCreated
			if r.Disk == "UpToDate" {
				gen = fixtureGeneration(name)
			}
			v.Data.DRBD = &drbdMeta{NodeID: r.NodeID, Gen: gen, Disk: r.Disk}
			v.Data.DRBD.slot(r.Peers[0].NodeID)
		}
	}
	s.event(at, "drbd.up", h.InstanceID, "drbd %s up on %s as %s (disk %s)", name, h.Hostname, r.Role, r.Disk)
	s.advanceDRBD(at, at) // it connects now, not at the end of the interval being settled
}

// hostDetached: the host loses the device — DRBD goes diskless, arrays fail, mounts vanish.
func (s *Sim) hostDetached(v *volume, instanceID string, at time.Time) {
	h := s.st.Hosts[instanceID]
	if h == nil {
		return
	}
	dev := v.Attachment.OSDevice
	lost := []string{dev}
	for _, r := range h.DRBD {
		if r.VolumeID == v.ID {
			s.saveDRBDMeta(r)
			delete(h.DRBD, r.Name)
			lost = append(lost, r.device())
			s.event(at, "drbd.lost-disk", instanceID, "drbd %s on %s lost its backing volume %s", r.Name, h.Hostname, v.ID)
		}
	}
	for name, md := range h.MD {
		for _, d := range md.Devices {
			if (sameDevice(d, dev) || slices.Contains(lost, d)) && md.Active {
				md.Active = false
				s.event(at, "md.failed", instanceID, "%s on %s stopped: member %s detached", name, h.Hostname, d)
			}
		}
	}
	for mp, m := range h.Mounts {
		if sameDevice(m.Device, dev) {
			delete(h.Mounts, mp)
		}
	}
}

// reachable is whether an instance's OS is up and on the network.
func (s *Sim) reachable(id string) bool {
	in := s.st.Instances[id]
	return in != nil && in.State == stateRunning && in.HardwareFailedAt.IsZero() && in.BootFailedAt.IsZero() && !s.zoneDown(in.Zone)
}
