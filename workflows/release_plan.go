package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// The plan of a release (its preflight), computed from what the cloud and the inventory say
// before anything changes: every volume attached to every server of the cluster and its way to
// the target zone, what blocks the release, and what each step is expected to take. Release
// shows it in its Status from its first minute and a dry run returns it; the approve update
// carries its hash. planRelease is a pure function of the facts, so the same facts always give
// the same plan and hash.

// ReleasePlan is a release's plan.
type ReleasePlan struct {
	Cluster    string `json:"cluster"`
	Version    string `json:"version"`
	NewCluster string `json:"new_cluster"`
	Zone       string `json:"zone"`
	TargetZone string `json:"target_zone"`
	ZoneMove   bool   `json:"zone_move"`
	// Servers are the new cluster's servers.
	Servers []activities.PlannedServer `json:"servers"`
	// Volumes is every volume attached to a server of the cluster, with its way.
	Volumes  []VolumeMove `json:"volumes"`
	Blockers []Blocker    `json:"blockers,omitempty"`
	// PreStage is what happens before the window can open (backups moved and seeded, first
	// snapshots of unreplicated critical volumes), with its longest part.
	PreStage        []PlanStep `json:"pre_stage"`
	PreStageSeconds float64    `json:"pre_stage_seconds"`
	// Window is the cutover's downtime, step by step; CriticalPath names what bounds each
	// step that runs things side by side.
	Window                   []PlanStep `json:"window"`
	CriticalPath             []string   `json:"critical_path"`
	PredictedDowntimeSeconds float64    `json:"predicted_downtime_seconds"`
	// Hash identifies the plan's decisions (not its estimates): an approval names it.
	Hash   string    `json:"hash"`
	MadeAt time.Time `json:"made_at"`
}

// VolumeMove is one volume of the cluster and how the release moves it.
type VolumeMove struct {
	VolumeID    string             `json:"volume_id"`
	Name        string             `json:"name,omitempty"`
	Server      string             `json:"server"`
	Role        anyops.Role        `json:"role,omitempty"`
	Kind        anyops.VolumeKind  `json:"kind,omitempty"`
	Criticality anyops.Criticality `json:"criticality,omitempty"`
	SizeGiB     int32              `json:"size_gib"`
	Type        string             `json:"type"`
	Zone        string             `json:"zone"`
	Way         anyops.VolumeWay   `json:"way,omitempty"`
	// Deferred: deferrable, and moved after the cutover in the background.
	Deferred bool `json:"deferred,omitempty"`
	// Resource is the DRBD resource it backs; Replica, for a file server's home volume, the
	// backup's volume that is its way (handed over, or snapshotted: never the serving disk).
	Resource string `json:"resource,omitempty"`
	Replica  string `json:"replica,omitempty"`
	// SnapshotFrom is the volume a snapshot way snapshots.
	SnapshotFrom string `json:"snapshot_from,omitempty"`
	// LastSnapshot is the latest completed snapshot of SnapshotFrom; FirstSnapshot says the next
	// one is a full one (none completed yet).
	LastSnapshot   string     `json:"last_snapshot,omitempty"`
	LastSnapshotAt *time.Time `json:"last_snapshot_at,omitempty"`
	FirstSnapshot  bool       `json:"first_snapshot,omitempty"`
	// StalenessSeconds is how far behind the copy in the target zone is now: 0 for an UpToDate
	// replica, the age of the last snapshot for a snapshot way (-1: there is none yet).
	StalenessSeconds float64 `json:"staleness_seconds"`
	// The estimates: before the window, in it, and after it (deferred).
	PreStageSeconds float64 `json:"pre_stage_seconds,omitempty"`
	WindowSeconds   float64 `json:"window_seconds,omitempty"`
	AfterSeconds    float64 `json:"after_seconds,omitempty"`
	// Rates the estimates use (measured, or the volume type's published throughput).
	SnapshotMBps float64 `json:"snapshot_mbps,omitempty"`
	ChangeMBps   float64 `json:"change_mbps,omitempty"`
	Measured     bool    `json:"measured,omitempty"`
	Note         string  `json:"note,omitempty"`
}

// Blocker is what stops the release until someone acts.
type Blocker struct {
	Kind     anyops.BlockerKind `json:"kind"`
	VolumeID string             `json:"volume_id,omitempty"`
	Server   string             `json:"server,omitempty"`
	Message  string             `json:"message"`
}

// PlanStep is one step of the pre-stage or of the window with its estimate.
type PlanStep struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Note    string  `json:"note,omitempty"`
}

// ReleaseEstimates are the durations the plan assumes for the steps the cloud does not
// measure per volume; the defaults are what EC2, Route 53 and the hosts take in production.
type ReleaseEstimates struct {
	Maintenance time.Duration `json:"maintenance,omitempty"` // stop serving, unmount clients (default 20s)
	SnapshotUp  time.Duration `json:"snapshot_up,omitempty"` // a snapshot's start-up (default 15s)
	VolumeNew   time.Duration `json:"volume_new,omitempty"`  // create a volume from a snapshot (default 10s)
	Attach      time.Duration `json:"attach,omitempty"`      // detach + attach + find the device (default 20s)
	HostSetUp   time.Duration `json:"host_set_up,omitempty"` // DRBD up, promote, md, mount, export (default 20s)
	DNS         time.Duration `json:"dns,omitempty"`         // Route 53 INSYNC and the TTL (default 70s)
	Clients     time.Duration `json:"clients,omitempty"`     // remount and health-check every client (default 20s)
	Build       time.Duration `json:"build,omitempty"`       // build and bootstrap a server (default 20m)
	// ChangeMBps is how fast a volume's data is assumed to change before its snapshots
	// measured it (default 5).
	ChangeMBps float64 `json:"change_mbps,omitempty"`
	// IncrementalLag is how stale the last pre-stage incremental is when the window opens:
	// the release takes one just before it (default 2m).
	IncrementalLag time.Duration `json:"incremental_lag,omitempty"`
}

func (e ReleaseEstimates) withDefaults() ReleaseEstimates {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&e.Maintenance, 20*time.Second)
	def(&e.SnapshotUp, 15*time.Second)
	def(&e.VolumeNew, 10*time.Second)
	def(&e.Attach, 20*time.Second)
	def(&e.HostSetUp, 20*time.Second)
	def(&e.DNS, 70*time.Second)
	def(&e.Clients, 20*time.Second)
	def(&e.Build, 20*time.Minute)
	def(&e.IncrementalLag, 2*time.Minute)
	if e.ChangeMBps <= 0 {
		e.ChangeMBps = 5
	}
	return e
}

// releaseFacts is what planRelease plans from.
type releaseFacts struct {
	In        ReleaseInput
	Inventory activities.ClusterInventory
	Cloud     activities.ClusterVolumes
	// DRBD is the file server's `drbdadm status` (its resources, their peers' disks).
	DRBD []activities.DRBDResource
	// Mounts are the file server's mounts of block devices (where logs and Dropbox are).
	Mounts []activities.HostMount
	Now    time.Time
}

const mibps = 1 << 20

// planRelease computes the plan from the facts.
func planRelease(f releaseFacts) ReleasePlan {
	in := f.In
	est := in.Estimates.withDefaults()
	inv := f.Inventory
	p := ReleasePlan{Cluster: in.Cluster, Version: in.Version, NewCluster: in.newCluster(), Zone: inv.Zone, TargetZone: in.targetZone(inv.Zone), MadeAt: f.Now}
	p.ZoneMove = p.TargetZone != p.Zone
	byInstance := map[string]activities.ServerInfo{}
	byName := map[string]activities.ServerInfo{}
	for _, s := range inv.Servers {
		byInstance[s.InstanceID], byName[s.Name] = s, s
	}
	invVol := map[string]activities.VolumeInfo{}
	for _, v := range inv.Volumes {
		invVol[v.VolumeID] = v
	}
	replicaOf := map[string]activities.ReplicaInfo{} // by primary volume
	for _, r := range inv.Replicas {
		replicaOf[r.PrimaryVolume] = r
	}
	secondaryOf := map[string]activities.ReplicaInfo{} // by secondary volume
	for _, r := range inv.Replicas {
		secondaryOf[r.SecondaryVolume] = r
	}
	drbdState := map[string]activities.DRBDResource{}
	for _, r := range f.DRBD {
		drbdState[r.Name] = r
	}
	cloudVol := map[string]activities.Volume{}
	for _, v := range f.Cloud.Volumes {
		cloudVol[v.ID] = v
	}

	// The new cluster: a server for each of the live one's, in the target zone.
	for _, s := range inv.Servers {
		if s.State == anyops.ServerTerminated || s.State == anyops.ServerStopped {
			continue
		}
		itype := s.InstanceType
		if t, ok := in.InstanceTypes[s.Role]; ok {
			itype = t
		}
		p.Servers = append(p.Servers, activities.PlannedServer{Name: newServerName(in.Cluster, p.NewCluster, s.Name), Role: s.Role,
			Zone: p.TargetZone, Cluster: p.NewCluster, Release: in.Version, InstanceType: itype})
	}
	sort.Slice(p.Servers, func(i, j int) bool { return p.Servers[i].Name < p.Servers[j].Name })

	rates := func(v activities.Volume) (snap, change float64, measured bool) {
		snap = anyops.VolumeThroughput(anyops.VolumeType(v.VolumeType), v.SizeGiB, v.Iops, v.Throughput)
		change = est.ChangeMBps * mibps
		if r, ok := inv.Rates[v.ID]; ok {
			if r.SnapshotBytesSec > 0 {
				snap, measured = r.SnapshotBytesSec, true
			}
			if r.ChangeBytesSec > 0 {
				change = r.ChangeBytesSec
			}
		}
		return snap, change, measured
	}
	lastSnapshot := func(id string) (activities.Snapshot, bool) {
		for _, s := range f.Cloud.Snapshots[id] {
			if s.State == "completed" {
				return s, true
			}
		}
		return activities.Snapshot{}, false
	}
	var handovers, snapshotsInWindow []VolumeMove
	for _, cv := range f.Cloud.Volumes {
		att := ""
		for _, a := range cv.Attachments {
			att = a.InstanceID
		}
		srv := byInstance[att]
		m := VolumeMove{VolumeID: cv.ID, Name: cv.Name, Server: srv.Name, Role: srv.Role, SizeGiB: cv.SizeGiB, Type: cv.VolumeType, Zone: cv.Zone}
		iv, known := invVol[cv.ID]
		switch {
		case known:
			m.Kind, m.Criticality, m.Resource = iv.Kind, iv.Criticality, iv.DRBDResource
		case inv.Classifications[cv.ID].Kind != "":
			c := inv.Classifications[cv.ID]
			m.Kind, m.Criticality, m.Note = c.Kind, c.Criticality, "classified by "+c.By
		case isBootDevice(cv):
			m.Kind, m.Criticality = anyops.VolumeBoot, anyops.Critical
		}
		if m.Server == "" {
			m.Server = att
		}
		if m.Kind == "" || m.Criticality == "" {
			p.Blockers = append(p.Blockers, Blocker{Kind: anyops.BlockerUnknownVolume, VolumeID: cv.ID, Server: m.Server,
				Message: fmt.Sprintf("volume %s (%d GiB %s, on %s) is not in the inventory: classify it (PUT /v1/volumes/%s/classification) before the release moves anything", cv.ID, cv.SizeGiB, cv.VolumeType, m.Server, cv.ID)})
			p.Volumes = append(p.Volumes, m)
			continue
		}
		snapRate, changeRate, measured := rates(cv)
		m.SnapshotMBps, m.ChangeMBps, m.Measured = snapRate/mibps, changeRate/mibps, measured
		switch {
		case m.Kind == anyops.VolumeBoot:
			m.Way, m.Note = anyops.WayStays, "a boot volume: the new servers boot their own"
		case srv.State == anyops.ServerStopped || srv.State == anyops.ServerTerminated:
			// A backup a storage change replaced keeps its volumes as a further copy; the data
			// it had lives on in the resources' current nodes.
			m.Way, m.Note = anyops.WayStays, "on "+srv.Name+", which is "+string(srv.State)+": kept as it is, not moved"
		case srv.Role == anyops.RoleBackup && secondaryOf[cv.ID].Name != "":
			m.Way, m.Note = anyops.WayStays, "the replica of "+secondaryOf[cv.ID].PrimaryVolume+" (its way is listed there)"
		case m.Resource != "" && replicaOf[cv.ID].Name != "":
			r := replicaOf[cv.ID]
			sec := cloudVol[r.SecondaryVolume]
			m.Replica = r.SecondaryVolume
			st, up := drbdState[r.Name], false
			if _, ok := drbdState[r.Name]; ok {
				up = upToDateWithPeers(st)
			}
			if sec.Zone == p.TargetZone {
				m.Way = anyops.WayReplica
				if up {
					m.WindowSeconds = est.Attach.Seconds()
					m.Note = "its replica " + sec.ID + " is UpToDate in " + p.TargetZone + ": handed over to the new file server"
				} else {
					m.StalenessSeconds = -1
					p.Blockers = append(p.Blockers, Blocker{Kind: anyops.BlockerNoCopy, VolumeID: cv.ID, Server: srv.Name,
						Message: fmt.Sprintf("its replica %s in %s is not UpToDate (%s): it must finish syncing", sec.ID, p.TargetZone, activities.FormatDRBDStatus([]activities.DRBDResource{st}))})
				}
			} else {
				// The backup is not in the target zone yet: the pre-stage moves it there (a
				// backup seeded from snapshots of this one's disk), then it is handed over.
				m.Way = anyops.WayReplica
				m.Note = fmt.Sprintf("its replica %s is in %s: the pre-stage moves the backup to %s (seeded from a snapshot of %s), then hands it over", sec.ID, sec.Zone, p.TargetZone, sec.ID)
				m.StalenessSeconds = -1
				full := float64(sec.SizeGiB) * (1 << 30) / snapRate
				m.PreStageSeconds = est.Build.Seconds() + full + est.SnapshotUp.Seconds()
				m.WindowSeconds = est.Attach.Seconds()
			}
			handovers = append(handovers, m)
		case cv.Zone == p.TargetZone:
			m.Way, m.WindowSeconds = anyops.WayInZone, est.Attach.Seconds()
			m.Note = "in " + p.TargetZone + " already: moved to the new server as it is"
			handovers = append(handovers, m)
		default:
			m.Way, m.SnapshotFrom = anyops.WaySnapshot, cv.ID
			m.Deferred = m.Criticality == anyops.Deferrable && !in.Policy.NoDeferred
			last, ok := lastSnapshot(cv.ID)
			bytes := float64(cv.SizeGiB) * (1 << 30)
			if ok {
				t := last.StartTime
				m.LastSnapshot, m.LastSnapshotAt = last.ID, &t
				m.StalenessSeconds = f.Now.Sub(last.StartTime).Seconds()
				if last.FullBytes > 0 {
					bytes = float64(last.FullBytes)
				}
			} else {
				m.FirstSnapshot, m.StalenessSeconds = true, -1
			}
			full := est.SnapshotUp.Seconds() + bytes/snapRate
			delta := est.SnapshotUp.Seconds() + changeRate*est.IncrementalLag.Seconds()/snapRate
			switch {
			case m.Deferred:
				// After the cutover: a full snapshot unless one is there, then the volume.
				m.AfterSeconds = delta + est.VolumeNew.Seconds() + est.Attach.Seconds()
				if m.FirstSnapshot {
					m.AfterSeconds = full + est.VolumeNew.Seconds() + est.Attach.Seconds()
				}
				m.Note = "deferrable: moved after the cutover, in the background"
			default:
				// Critical: a full snapshot ahead of the window and incrementals, so the one in
				// the window is only a delta.
				if m.FirstSnapshot {
					m.PreStageSeconds = full
				}
				m.WindowSeconds = delta + est.VolumeNew.Seconds() + est.Attach.Seconds()
				m.Note = "not replicated: a full snapshot ahead, incrementals, the last one in the window"
				snapshotsInWindow = append(snapshotsInWindow, m)
			}
		}
		p.Volumes = append(p.Volumes, m)
	}
	for _, s := range inv.Servers {
		if s.State == anyops.ServerImpaired {
			p.Blockers = append(p.Blockers, Blocker{Kind: anyops.BlockerServerDown, Server: s.Name, Message: s.Name + " is impaired: its volumes cannot be read from its host"})
		}
	}

	// The pre-stage: its parts run side by side; the longest bounds it.
	p.PreStage = append(p.PreStage, PlanStep{Name: "build the new cluster's servers", Seconds: est.Build.Seconds(), Note: fmt.Sprintf("%d servers bootstrapping in parallel", len(p.Servers))})
	for _, m := range p.Volumes {
		if m.PreStageSeconds > 0 {
			p.PreStage = append(p.PreStage, PlanStep{Name: string(m.Way) + " " + m.VolumeID, Seconds: m.PreStageSeconds, Note: m.Note})
		}
	}
	for _, s := range p.PreStage {
		p.PreStageSeconds = max(p.PreStageSeconds, s.Seconds)
	}

	// The window: maintenance, then the final snapshots and the handovers side by side, the
	// file server's set-up, the names, the clients.
	longest := func(ms []VolumeMove) (float64, string) {
		most, which := 0.0, ""
		for _, m := range ms {
			if m.WindowSeconds > most {
				most, which = m.WindowSeconds, m.VolumeID
			}
		}
		return most, which
	}
	snapSec, snapVol := longest(snapshotsInWindow)
	handSec, handVol := longest(handovers)
	p.Window = []PlanStep{
		{Name: "maintenance", Seconds: est.Maintenance.Seconds(), Note: "the old cluster stops serving"},
		{Name: "final snapshots", Seconds: snapSec, Note: "the last incremental of each unreplicated critical volume, and its volume in " + p.TargetZone},
		{Name: "handover", Seconds: handSec, Note: "replica volumes handed to the new file server"},
		{Name: "file server", Seconds: est.HostSetUp.Seconds(), Note: "DRBD up and Primary, md assembled, mounted, exported"},
		{Name: "names", Seconds: est.DNS.Seconds(), Note: "the file service's name moved (Route 53 INSYNC)"},
		{Name: "clients", Seconds: est.Clients.Seconds(), Note: "every client mounted and checked"},
	}
	// Final snapshots and handovers overlap: the window waits for the longer.
	parallel := max(snapSec, handSec)
	p.PredictedDowntimeSeconds = est.Maintenance.Seconds() + parallel + est.HostSetUp.Seconds() + est.DNS.Seconds() + est.Clients.Seconds()
	p.CriticalPath = []string{"maintenance"}
	switch {
	case snapSec >= handSec && snapVol != "":
		p.CriticalPath = append(p.CriticalPath, "final snapshot of "+snapVol)
	case handVol != "":
		p.CriticalPath = append(p.CriticalPath, "handover of "+handVol)
	}
	p.CriticalPath = append(p.CriticalPath, "file server", "names", "clients")
	p.Hash = planHash(p)
	return p
}

// isBootDevice: an instance's root volume (EC2 names it /dev/xvda or /dev/sda1).
func isBootDevice(v activities.Volume) bool {
	for _, a := range v.Attachments {
		if a.Device == "/dev/xvda" || a.Device == "/dev/sda1" {
			return true
		}
	}
	return false
}

// newServerName is a live server's counterpart in the new cluster: live-web1 → <new>-web1.
func newServerName(cluster, newCluster, server string) string {
	if rest, ok := strings.CutPrefix(server, cluster+"-"); ok {
		return newCluster + "-" + rest
	}
	return newCluster + "-" + server
}

// planHash is the hash of the plan's decisions: what moves how, what blocks, where to —
// not its estimates or staleness, which change by the minute.
func planHash(p ReleasePlan) string {
	type decision struct {
		VolumeID, Way, Replica, SnapshotFrom string
		Deferred                             bool
		Kind, Criticality                    string
	}
	d := struct {
		Cluster, Version, NewCluster, TargetZone string
		Servers                                  []activities.PlannedServer
		Volumes                                  []decision
		Blockers                                 []Blocker
	}{p.Cluster, p.Version, p.NewCluster, p.TargetZone, p.Servers, nil, p.Blockers}
	for _, m := range p.Volumes {
		d.Volumes = append(d.Volumes, decision{m.VolumeID, string(m.Way), m.Replica, m.SnapshotFrom, m.Deferred, string(m.Kind), string(m.Criticality)})
	}
	slices.SortFunc(d.Volumes, func(a, b decision) int { return strings.Compare(a.VolumeID, b.VolumeID) })
	b, _ := json.Marshal(d)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
