package cloudsim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

// host is the simulated operating system of one instance.
type host struct {
	InstanceID   string                `json:"instance_id"`
	Hostname     string                `json:"hostname"`
	Role         string                `json:"role,omitempty"`
	Bootstrapped bool                  `json:"bootstrapped,omitempty"`
	Packages     map[string]string     `json:"packages"` // name -> installed version
	Services     map[string]string     `json:"services"` // name -> active|inactive|failed
	DRBD         map[string]*drbdRes   `json:"drbd"`
	MD           map[string]*mdArray   `json:"md"`      // /dev/md0 -> array
	Mounts       map[string]mountEntry `json:"mounts"`  // mount point -> what is mounted
	Exports      map[string]string     `json:"exports"` // "client:/path" -> options
	BootedAt     time.Time             `json:"booted_at,omitzero"`
	Boots        int                   `json:"boots"`
}

type drbdRes struct {
	Name        string  `json:"name"`
	Minor       int     `json:"minor"`
	VolumeID    string  `json:"volume_id"`
	Peer        string  `json:"peer"` // instance id
	MetaData    bool    `json:"meta_data"`
	Up          bool    `json:"up"`
	AdminDown   bool    `json:"admin_down,omitempty"` // drbdadm disconnect
	Role        string  `json:"role"`                 // Primary, Secondary
	Disk        string  `json:"disk"`                 // UpToDate, Inconsistent, Outdated, Diskless
	Connected   bool    `json:"connected"`
	ResyncTotal float64 `json:"resync_total,omitempty"` // bytes, while SyncTarget
	ResyncDone  float64 `json:"resync_done,omitempty"`
	OutOfSync   float64 `json:"out_of_sync,omitempty"` // bytes the peer wrote while we were apart
}

func (r *drbdRes) device() string { return fmt.Sprintf("/dev/drbd%d", r.Minor) }

type mdArray struct {
	Level   string   `json:"level"`
	Devices []string `json:"devices"`
	Active  bool     `json:"active"`
}

type mountEntry struct {
	Device string `json:"device"`
	FSType string `json:"fstype"`
}

// Package versions: what the image ships, and what an upgrade brings (the Heartbleed fix).
var (
	basePackages = map[string]string{
		"openssl": "1.0.1f-1ubuntu2", "libssl1.0.0": "1.0.1f-1ubuntu2", "openssh-server": "1:6.6p1-2ubuntu1",
		"amazon-ssm-agent": "2.3.1319.0-1", "drbd-utils": "9.15.0-1", "mdadm": "3.2.5-5ubuntu4",
		"nfs-kernel-server": "1:1.2.8-6ubuntu1", "e2fsprogs": "1.42.9-3ubuntu1",
	}
	upgradedPackages = map[string]string{
		"openssl": "1.0.1f-1ubuntu2.2", "libssl1.0.0": "1.0.1f-1ubuntu2.2", "nginx": "1.4.6-1ubuntu3.1",
		"openssh-server": "1:6.6p1-2ubuntu2",
	}
	// rolePackages and roleServices are what `anyops-bootstrap` installs and starts per role.
	rolePackages = map[string]map[string]string{
		"file":    {"nfs-kernel-server": "1:1.2.8-6ubuntu1"},
		"backup":  {"nfs-kernel-server": "1:1.2.8-6ubuntu1"},
		"web":     {"nginx": "1.4.6-1ubuntu3", "uwsgi": "2.0.4-1"},
		"console": {"nginx": "1.4.6-1ubuntu3", "python-tornado": "3.1.1-1ubuntu2"},
		"task":    {"cron": "3.0pl1-124ubuntu2"},
	}
	roleServices = map[string][]string{
		"file": {"nfs-server"}, "backup": {"nfs-server"}, "web": {"nginx", "uwsgi"},
		"console": {"nginx", "tornado"}, "task": {"cron"},
	}
	// servicePackage says which package a service needs.
	servicePackage = map[string]string{
		"nfs-server": "nfs-kernel-server", "nginx": "nginx", "uwsgi": "uwsgi", "tornado": "python-tornado",
		"cron": "cron", "ssh": "openssh-server", "amazon-ssm-agent": "amazon-ssm-agent", "drbd": "drbd-utils",
	}
)

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
	h.Mounts["/"] = mountEntry{Device: "/dev/xvda1", FSType: "ext4"}
	return h
}

// bootHost runs when an instance reaches running: services start, tag-configured DRBD
// resources come up as Secondary, and a corrupt boot disk shows itself.
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
		h.Services[svc] = "active"
	}
	h.Mounts = map[string]mountEntry{"/": {Device: "/dev/xvda1", FSType: "ext4"}}
	h.Exports = map[string]string{}
	for _, md := range h.MD {
		md.Active = false
	}
	for _, id := range sortedKeys(s.st.Volumes) {
		if v := s.st.Volumes[id]; v.Attachment != nil && v.Attachment.InstanceID == in.ID && v.Attachment.State == "attached" {
			s.hostAttached(v, at)
		}
	}
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
		r.Up, r.Role, r.Connected = false, "Secondary", false
	}
	for _, md := range h.MD {
		md.Active = false
	}
	h.Mounts = map[string]mountEntry{}
	h.Exports = map[string]string{}
}

// hostAttached brings up a DRBD resource configured by the volume's tags when it carries a
// drbd-role tag (a pre-configured host); otherwise `drbdadm up` does it.
func (s *Sim) hostAttached(v *volume, at time.Time) {
	h := s.st.Hosts[v.Attachment.InstanceID]
	in := s.st.Instances[v.Attachment.InstanceID]
	if h == nil || in == nil || in.State != stateRunning {
		return
	}
	name, ok := v.Tags.get(anyops.TagDRBDResource)
	if !ok {
		return
	}
	role, auto := v.Tags.get(anyops.TagDRBDRole)
	if !auto {
		return
	}
	r := h.DRBD[name]
	if r != nil {
		// Known from before a reboot: DRBD comes back as Secondary, as the init script does.
		r.Up, r.Role = true, "Secondary"
	} else {
		r = s.newDRBDRes(h, name, v)
		r.MetaData, r.Up, r.Disk = true, true, "Inconsistent"
		if strings.EqualFold(role, "primary") {
			r.Disk, r.Role = "UpToDate", "Primary"
		}
		if d, _ := v.Tags.get(anyops.TagDRBDDisk); d == "UpToDate" {
			r.Disk = "UpToDate"
		}
	}
	s.event(at, "drbd.up", h.InstanceID, "drbd %s up on %s as %s (disk %s)", name, h.Hostname, r.Role, r.Disk)
}

func (s *Sim) newDRBDRes(h *host, name string, v *volume) *drbdRes {
	peer, _ := v.Tags.get(anyops.TagDRBDPeer)
	r := &drbdRes{Name: name, Minor: len(h.DRBD), VolumeID: v.ID, Peer: peer, Role: "Secondary", Disk: "Diskless"}
	h.DRBD[name] = r
	return r
}

// hostDetached: the host loses the device — DRBD goes diskless, arrays fail, mounts vanish.
func (s *Sim) hostDetached(v *volume, instanceID string, at time.Time) {
	h := s.st.Hosts[instanceID]
	if h == nil {
		return
	}
	dev := v.Attachment.Device
	lost := []string{dev}
	for _, r := range h.DRBD {
		if r.VolumeID == v.ID {
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

// drbdLinked is whether resource name replicates between a and its peer right now.
func (s *Sim) drbdLinked(a *host, r *drbdRes) (*host, *drbdRes, bool) {
	b := s.st.Hosts[r.Peer]
	if b == nil {
		return nil, nil, false
	}
	pr := b.DRBD[r.Name]
	if pr == nil {
		return b, nil, false
	}
	ok := r.Up && pr.Up && !r.AdminDown && !pr.AdminDown && pr.Peer == a.InstanceID &&
		s.reachable(a.InstanceID) && s.reachable(b.InstanceID) &&
		!s.drbdDisconnected(a.InstanceID, r.Name) && !s.drbdDisconnected(b.InstanceID, r.Name)
	return b, pr, ok
}

func (s *Sim) resSize(r *drbdRes) float64 {
	if v := s.st.Volumes[r.VolumeID]; v != nil {
		return float64(v.SizeGiB) * gib
	}
	return 0
}

// advanceDRBD moves every replication link from from to to: connection changes take effect at
// to (DRBD is evaluated at settle points), resync and out-of-sync accumulate over the interval.
func (s *Sim) advanceDRBD(from, to time.Time) {
	dt := to.Sub(from).Seconds()
	if dt < 0 {
		dt = 0
	}
	for _, hid := range sortedKeys(s.st.Hosts) {
		h := s.st.Hosts[hid]
		for _, name := range sortedKeys(h.DRBD) {
			r := h.DRBD[name]
			peer, pr, linked := s.drbdLinked(h, r)
			if linked != r.Connected {
				r.Connected = linked
				if linked {
					s.drbdConnected(h, r, peer, pr, to)
				} else if r.Up {
					s.event(to, "drbd.disconnected", h.InstanceID, "drbd %s on %s lost its peer %s", name, h.Hostname, r.Peer)
					// Fencing: a primary that is still alive marks the peer it lost Outdated.
					// When the primary itself died, the secondary's data stays UpToDate.
					if r.Role == "Secondary" && r.Disk == "UpToDate" && pr != nil && pr.Role == "Primary" && s.reachable(r.Peer) {
						r.Disk = "Outdated"
					}
					if r.Disk == "Inconsistent" && r.ResyncTotal > 0 {
						r.OutOfSync = r.ResyncTotal - r.ResyncDone
						r.ResyncTotal, r.ResyncDone = 0, 0
					}
				}
				s.markDirty()
				continue // the change happened at to: the interval before it had the old state
			}
			switch {
			case !linked && pr != nil && pr.Up && pr.Role == "Primary" && s.reachable(r.Peer) &&
				!(r.Role == "Primary" && s.reachable(h.InstanceID)):
				// A live primary keeps writing while we are away (down, cut off, or a failed
				// old primary): that is what the resync must move when we reconnect.
				r.OutOfSync = min(r.OutOfSync+drbdChangeRate*dt, s.resSize(r))
			case linked && r.Disk == "Inconsistent" && pr != nil && pr.Disk == "UpToDate" && r.ResyncTotal > 0:
				r.ResyncDone += drbdResyncRate * dt
				if r.ResyncDone >= r.ResyncTotal {
					at := to.Add(-time.Duration((r.ResyncDone - r.ResyncTotal) / drbdResyncRate * float64(time.Second))).Truncate(time.Millisecond)
					r.Disk, r.ResyncTotal, r.ResyncDone, r.OutOfSync = "UpToDate", 0, 0, 0
					s.event(at, "drbd.synced", h.InstanceID, "drbd %s on %s is UpToDate with %s", name, h.Hostname, peer.Hostname)
				}
				s.markDirty()
			}
		}
	}
}

// drbdConnected starts a resync when one side lags: the changed blocks after a disconnect,
// the whole device for a fresh replica.
func (s *Sim) drbdConnected(h *host, r *drbdRes, peer *host, pr *drbdRes, at time.Time) {
	s.event(at, "drbd.connected", h.InstanceID, "drbd %s on %s connected to %s", r.Name, h.Hostname, peer.Hostname)
	if pr.Disk != "UpToDate" {
		return
	}
	switch {
	case r.Disk == "Inconsistent" || r.Disk == "Diskless":
		total := r.OutOfSync
		if total == 0 {
			total = s.resSize(r)
		}
		r.Disk, r.ResyncTotal, r.ResyncDone, r.OutOfSync = "Inconsistent", total, 0, 0
	case r.Disk == "Outdated" || (r.Role == "Secondary" && r.OutOfSync > 0):
		total := max(r.OutOfSync, mb)
		r.Disk, r.ResyncTotal, r.ResyncDone, r.OutOfSync = "Inconsistent", total, 0, 0
	default:
		return
	}
	s.event(at, "drbd.resync-started", h.InstanceID, "drbd %s on %s resyncing %.1f GiB from %s at %d MB/s", r.Name, h.Hostname, r.ResyncTotal/gib, peer.Hostname, drbdResyncRate/mb)
}

// drbdStatus renders `drbdadm status` in DRBD 9's format; the connection is named after the
// peer's hostname, as DRBD names it.
func (s *Sim) drbdStatus(h *host, r *drbdRes) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s role:%s\n  disk:%s\n", r.Name, r.Role, r.Disk)
	peerName := r.Peer
	peer, pr, linked := s.drbdLinked(h, r)
	if peer != nil {
		peerName = peer.Hostname
	}
	if peerName == "" {
		return b.String()
	}
	if !linked || pr == nil {
		state := "Connecting"
		if r.AdminDown {
			state = "StandAlone"
		}
		fmt.Fprintf(&b, "  %s connection:%s\n", peerName, state)
		return b.String()
	}
	fmt.Fprintf(&b, "  %s role:%s\n", peerName, pr.Role)
	switch {
	case r.Disk == "Inconsistent" && pr.Disk == "UpToDate" && r.ResyncTotal > 0:
		fmt.Fprintf(&b, "    replication:SyncTarget peer-disk:UpToDate done:%.2f\n", pct(r.ResyncDone, r.ResyncTotal))
	case pr.Disk == "Inconsistent" && r.Disk == "UpToDate" && pr.ResyncTotal > 0:
		fmt.Fprintf(&b, "    replication:SyncSource peer-disk:Inconsistent done:%.2f\n", pct(pr.ResyncDone, pr.ResyncTotal))
	default:
		fmt.Fprintf(&b, "    replication:Established peer-disk:%s\n", pr.Disk)
	}
	return b.String()
}

func pct(done, total float64) float64 {
	if total <= 0 {
		return 100
	}
	return min(99.99, done/total*100)
}

// devices lists the block devices a host sees: attached volumes, DRBD devices, active arrays.
func (s *Sim) devices(h *host) map[string]*volume {
	out := map[string]*volume{}
	for _, id := range sortedKeys(s.st.Volumes) {
		v := s.st.Volumes[id]
		if a := v.Attachment; a != nil && a.InstanceID == h.InstanceID && a.State != "attaching" {
			out[canonicalDevice(a.Device)] = v
		}
	}
	return out
}

// canonicalDevice maps /dev/sdf and /dev/xvdf (how the attach names it and how Linux on Xen
// names it) to one name.
func canonicalDevice(d string) string {
	if strings.HasPrefix(d, "/dev/sd") {
		return "/dev/xvd" + d[len("/dev/sd"):]
	}
	return d
}

func sameDevice(a, b string) bool { return canonicalDevice(a) == canonicalDevice(b) }
