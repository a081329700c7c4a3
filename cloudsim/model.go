package cloudsim

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"
)

// The time model: every duration is simulated time. docs/cloudsim.md documents the same numbers;
// change both together.
const (
	bootTime          = 45 * time.Second // pending → running, and start after stop
	stopTime          = 60 * time.Second // stopping → stopped
	hungStopTime      = time.Hour        // stop on failed hardware without Force
	forcedHungStop    = 10 * time.Minute // stop on failed hardware with Force
	terminateTime     = 30 * time.Second // shutting-down → terminated
	volumeCreateTime  = 10 * time.Second // creating → available
	attachTime        = 5 * time.Second  // attaching → attached
	detachTime        = 10 * time.Second // detaching → detached
	modifyingTime     = 30 * time.Second // modification: modifying → optimizing
	optimizeRate      = 200 * mb         // modification: optimizing throughput per second
	firstSnapshotRate = 20 * mb          // bytes/s of a volume's size for its first snapshot
	incrSnapshotRate  = 200 * mb         // bytes/s of changed data for later snapshots
	incrChangeShare   = 0.05             // share of a volume changed between two snapshots
	copySnapshotRate  = 50 * mb          // bytes/s of snapshot size for CopySnapshot
	drbdResyncRate    = 100 * mb         // DRBD resync throughput, bytes/s
	drbdChangeRate    = 5 * mb           // writes a primary makes while its peer is away, bytes/s
	bootstrapTime     = 19 * time.Minute // first `anyops-bootstrap`: packages + services; with boot ≈ 20 min
	terminatedVisible = time.Hour        // a terminated instance stays visible this long
	snapshotListLag   = 5 * time.Second  // a new snapshot shows in DescribeSnapshots listings this late (by id at once)
	commandTimeout    = time.Hour        // SSM default execution timeout
	maxEvents         = 10000
)

const (
	mb  = 1 << 20
	gib = 1 << 30
)

// EC2 instance state codes and names.
const (
	statePending      = "pending"
	stateRunning      = "running"
	stateShuttingDown = "shutting-down"
	stateTerminated   = "terminated"
	stateStopping     = "stopping"
	stateStopped      = "stopped"
)

var stateCodes = map[string]int{
	statePending: 0, stateRunning: 16, stateShuttingDown: 32, stateTerminated: 48,
	stateStopping: 64, stateStopped: 80,
}

// stateFormat is the version of the state file's layout; a file of an older one with a fleet
// in it is refused (a fleet built when tags configured the hosts cannot be carried on).
// 2: hosts hold files, volumes what is written on them, attachments the guest's device name.
const stateFormat = 2

// state is everything the simulation persists.
type state struct {
	Format    int                   `json:"format"`
	Clock     time.Time             `json:"clock"`
	Speed     float64               `json:"speed,omitempty"` // set at runtime (SetSpeed); wins over the configured one
	Seed      int64                 `json:"seed"`
	Counter   uint64                `json:"counter"`
	Instances map[string]*instance  `json:"instances"`
	Volumes   map[string]*volume    `json:"volumes"`
	Snapshots map[string]*snapshot  `json:"snapshots"`
	Mods      map[string]*volumeMod `json:"volume_modifications"` // by volume id, the latest
	Commands  map[string]*command   `json:"commands"`
	Tokens    map[string]*clientTok `json:"client_tokens"` // by action + token
	Faults    map[string]*Fault     `json:"faults"`
	Scheduled []*scheduledFault     `json:"scheduled"`
	Events    []Event               `json:"events"`
	EventSeq  int64                 `json:"event_seq"`
	Hosts     map[string]*host      `json:"hosts"` // by instance id
	// Route 53 (dns.go): zones by id, changes by id, and every caller reference ever used.
	Zones      map[string]*hostedZone `json:"route53_zones"`
	DNSChanges map[string]*dnsChange  `json:"route53_changes"`
	CallerRefs map[string]string      `json:"route53_caller_references"`
	// CloudWatch and SNS (cloudwatch_sns.go, sns.go).
	Alarms        map[string]*alarm        `json:"alarms"` // by instance/metric
	Subscriptions map[string]*subscription `json:"sns_subscriptions"`
	Deliveries    []*Delivery              `json:"sns_deliveries,omitempty"`
}

func newState(seed int64, clock time.Time) *state {
	st := &state{Format: stateFormat, Clock: clock, Seed: seed}
	st.init()
	return st
}

// init makes every map usable after JSON decoding.
func (st *state) init() {
	if st.Instances == nil {
		st.Instances = map[string]*instance{}
	}
	if st.Volumes == nil {
		st.Volumes = map[string]*volume{}
	}
	if st.Snapshots == nil {
		st.Snapshots = map[string]*snapshot{}
	}
	if st.Mods == nil {
		st.Mods = map[string]*volumeMod{}
	}
	if st.Commands == nil {
		st.Commands = map[string]*command{}
	}
	if st.Tokens == nil {
		st.Tokens = map[string]*clientTok{}
	}
	if st.Faults == nil {
		st.Faults = map[string]*Fault{}
	}
	if st.Hosts == nil {
		st.Hosts = map[string]*host{}
	}
	if st.Zones == nil {
		st.Zones = map[string]*hostedZone{}
	}
	if st.DNSChanges == nil {
		st.DNSChanges = map[string]*dnsChange{}
	}
	if st.CallerRefs == nil {
		st.CallerRefs = map[string]string{}
	}
	if st.Alarms == nil {
		st.Alarms = map[string]*alarm{}
	}
	if st.Subscriptions == nil {
		st.Subscriptions = map[string]*subscription{}
	}
}

// newID returns prefix-<17 hex>, deterministic in the seed and a persisted counter.
func (st *state) newID(prefix string) string {
	st.Counter++
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%s", st.Seed, st.Counter, prefix)
	return fmt.Sprintf("%s-0%016x", prefix, h.Sum64())
}

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// tags is a resource's tag set in insertion order.
type tags []tag

func (ts tags) get(k string) (string, bool) {
	for _, t := range ts {
		if t.Key == k {
			return t.Value, true
		}
	}
	return "", false
}

func (ts *tags) set(k, v string) {
	for i := range *ts {
		if (*ts)[i].Key == k {
			(*ts)[i].Value = v
			return
		}
	}
	*ts = append(*ts, tag{k, v})
}

type instance struct {
	ID            string    `json:"id"`
	ReservationID string    `json:"reservation_id"`
	ImageID       string    `json:"image_id"`
	Type          string    `json:"type"`
	Zone          string    `json:"zone"`
	PrivateIP     string    `json:"private_ip"`
	LaunchTime    time.Time `json:"launch_time"`
	State         string    `json:"state"`
	StateSince    time.Time `json:"state_since"`
	TransitionAt  time.Time `json:"transition_at,omitzero"` // when the current transitional state ends
	ClientToken   string    `json:"client_token,omitempty"`
	RootVolume    string    `json:"root_volume"`
	Tags          tags      `json:"tags"`
	StateReason   string    `json:"state_reason,omitempty"`
	// Health: a failed host (hardware fault) impairs the system check; an unbootable root disk
	// impairs the instance check.
	HardwareFailedAt time.Time `json:"hardware_failed_at,omitzero"`
	BootFailedAt     time.Time `json:"boot_failed_at,omitzero"`
	CorruptOnRestart bool      `json:"corrupt_on_restart,omitempty"`
}

func (in *instance) hostname() string { return "ip-" + dashIP(in.PrivateIP) }

type volume struct {
	ID           string    `json:"id"`
	Zone         string    `json:"zone"`
	SizeGiB      int32     `json:"size_gib"`
	Type         string    `json:"type"`
	Iops         int32     `json:"iops,omitempty"`
	SnapshotID   string    `json:"snapshot_id,omitempty"`
	State        string    `json:"state"` // creating, available, in-use
	CreateTime   time.Time `json:"create_time"`
	ReadyAt      time.Time `json:"ready_at,omitzero"`
	ClientToken  string    `json:"client_token,omitempty"`
	Encrypted    bool      `json:"encrypted,omitempty"`
	Tags         tags      `json:"tags"`
	Attachment   *attach   `json:"attachment,omitempty"`
	Data         blockData `json:"data,omitzero"`            // what is written on it (blockdev.go)
	Corrupt      bool      `json:"corrupt,omitempty"`        // fsck finds errors it cannot fix
	Snapshotted  bool      `json:"snapshotted,omitempty"`    // a snapshot of it completed: the next is incremental
	Root         bool      `json:"root,omitempty"`           // created by RunInstances as the boot disk
	DeleteOnTerm bool      `json:"delete_on_term,omitempty"` // deleted with its instance
}

// blockData is what is written on a volume, as far as the hosts' tools look: it travels with
// the volume (detached, attached elsewhere, snapshotted, restored). For a volume that backs a
// DRBD resource (internal metadata at its end) FS and MD are the DRBD device's content, which
// is where the data area starts.
type blockData struct {
	FS string `json:"fs,omitempty"` // the file system mkfs made on the device: ext4, xfs
	// Files are the files written on that file system (datafs.go): path → content, a
	// directory as its path with a trailing slash.
	Files map[string]string `json:"files,omitempty"`
	MD    *mdSuper          `json:"md,omitempty"`   // the md superblock: the device is a member of an array
	DRBD  *drbdMeta         `json:"drbd,omitempty"` // DRBD's internal metadata at the end of the volume
}

// drbdMeta is DRBD's internal metadata on a backing volume: what drbdadm create-md writes and
// get-gi reads.
type drbdMeta struct {
	NodeID int    `json:"node_id"`
	Gen    string `json:"gen"`  // current data generation UUID; drbdJustCreated until data exists
	Disk   string `json:"disk"` // the disk state last recorded: Inconsistent, UpToDate, Outdated
	// The bitmaps, as drbdRes keeps them: bytes ahead of the peer, behind it, and left
	// behind by a promotion and not yet logged as lost.
	Ahead  float64 `json:"ahead_bytes,omitempty"`
	Behind float64 `json:"behind_bytes,omitempty"`
	Lacks  float64 `json:"lacks_bytes,omitempty"`
}

// drbdJustCreated is the current UUID create-md writes (DRBD's UUID_JUST_CREATED): nothing has
// been written on either side of a brand new pair yet.
const drbdJustCreated = "0000000000000004"

// mdSuper is an md (v1.2) superblock.
type mdSuper struct {
	UUID    string `json:"uuid"`
	Name    string `json:"name"` // the array device it was created as: /dev/md0
	Level   string `json:"level"`
	Devices int    `json:"devices"`
	Index   int    `json:"index"`
	FS      string `json:"fs,omitempty"` // the file system on the array
	// Files are the files on the array's file system, as blockData.Files.
	Files map[string]string `json:"files,omitempty"`
}

// copyContent gives dst the data src holds (not its DRBD metadata): what a resync does.
func (dst *blockData) copyContent(src blockData) {
	dst.FS = src.FS
	dst.Files = maps.Clone(src.Files)
	dst.MD = nil
	if src.MD != nil {
		md := *src.MD
		md.Files = maps.Clone(src.MD.Files)
		dst.MD = &md
	}
}

// clone is a copy of everything on the volume, DRBD metadata included: what a snapshot takes.
func (src blockData) clone() blockData {
	var d blockData
	d.copyContent(src)
	if src.DRBD != nil {
		m := *src.DRBD
		d.DRBD = &m
	}
	return d
}

type attach struct {
	InstanceID string    `json:"instance_id"`
	Device     string    `json:"device"`              // the name AttachVolume asked for
	OSDevice   string    `json:"os_device,omitempty"` // the name the guest sees it by (devices.go)
	State      string    `json:"state"`               // attaching, attached, detaching
	Since      time.Time `json:"since"`
	ReadyAt    time.Time `json:"ready_at"`
}

type snapshot struct {
	ID          string    `json:"id"`
	VolumeID    string    `json:"volume_id"`
	VolumeSize  int32     `json:"volume_size"`
	Zone        string    `json:"zone"`
	Description string    `json:"description,omitempty"`
	State       string    `json:"state"` // pending, completed, error
	StartTime   time.Time `json:"start_time"`
	DoneTime    time.Time `json:"done_time,omitzero"`
	Total       float64   `json:"total_bytes"` // bytes this snapshot has to move
	Done        float64   `json:"done_bytes"`
	Rate        float64   `json:"rate"` // bytes per simulated second with no fault
	Updated     time.Time `json:"updated"`
	SourceSnap  string    `json:"source_snapshot,omitempty"` // CopySnapshot
	Data        blockData `json:"data,omitzero"`             // the volume's content when taken
	Tags        tags      `json:"tags"`
}

func (sn *snapshot) progress() string {
	if sn.State == "completed" {
		return "100%"
	}
	pct := 0
	if sn.Total > 0 {
		pct = int(sn.Done / sn.Total * 100)
	}
	if pct > 99 {
		pct = 99
	}
	return fmt.Sprintf("%d%%", pct)
}

type volumeMod struct {
	VolumeID     string    `json:"volume_id"`
	State        string    `json:"state"` // modifying, optimizing, completed
	OriginalSize int32     `json:"original_size"`
	TargetSize   int32     `json:"target_size"`
	OriginalType string    `json:"original_type"`
	TargetType   string    `json:"target_type"`
	OriginalIops int32     `json:"original_iops,omitempty"`
	TargetIops   int32     `json:"target_iops,omitempty"`
	StartTime    time.Time `json:"start_time"`
	OptimizeAt   time.Time `json:"optimize_at"`
	EndTime      time.Time `json:"end_time,omitzero"`
}

func (m *volumeMod) progress(now time.Time) int64 {
	switch m.State {
	case "completed":
		return 100
	case "modifying":
		return 0
	}
	total := m.EndTime.Sub(m.OptimizeAt)
	if total <= 0 {
		return 100
	}
	return int64(float64(now.Sub(m.OptimizeAt)) / float64(total) * 100)
}

// clientTok remembers the first result of a call with a ClientToken.
type clientTok struct {
	Action    string   `json:"action"`
	ParamHash string   `json:"param_hash"`
	Resources []string `json:"resources"`
}

// Event is one entry of the event log, stamped with simulated time. Data holds the facts of
// the events a drill computes with (docs/cloudsim.md lists them per type).
type Event struct {
	Seq      int64          `json:"seq"`
	Time     time.Time      `json:"time"`
	Type     string         `json:"type"`
	Resource string         `json:"resource,omitempty"`
	Message  string         `json:"message"`
	Data     map[string]any `json:"data,omitempty"`
}

// event appends to the bounded log; callers hold s.mu.
func (s *Sim) event(at time.Time, typ, resource, format string, args ...any) {
	s.eventData(at, typ, resource, nil, format, args...)
}

// eventData appends an event with structured data; callers hold s.mu.
func (s *Sim) eventData(at time.Time, typ, resource string, data map[string]any, format string, args ...any) {
	s.st.EventSeq++
	e := Event{Seq: s.st.EventSeq, Time: at, Type: typ, Resource: resource, Message: fmt.Sprintf(format, args...), Data: data}
	s.st.Events = append(s.st.Events, e)
	if n := len(s.st.Events); n > maxEvents {
		s.st.Events = s.st.Events[n-maxEvents:] // append reallocates now and then; no copy per event
	}
	s.log.Debug("cloudsim event", "type", typ, "resource", resource, "msg", e.Message, "sim_time", at)
	s.markDirty()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func dashIP(ip string) string { return strings.ReplaceAll(ip, ".", "-") }

func toKebab(s string) string {
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				out = append(out, '-')
			}
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

// zoneNames are the simulated region's availability zones.
func zoneNames(region string) []string {
	return []string{region + "a", region + "b", region + "c"}
}
