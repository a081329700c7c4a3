// Package anyops holds the domain vocabulary of the Anyops control plane: the kinds of things
// the platform runs (zones, clusters, servers, volumes, replicas, consoles) and the closed sets
// of values that describe them. Adapters (inventory, api, activities, sandboxd, cloudsim) are
// named after what they wrap and import this package; it imports nothing of theirs.
package anyops

import (
	"fmt"
	"slices"
	"time"
)

// Role is what a server does in a cluster.
type Role string

const (
	RoleFile    Role = "file"    // serves home storage over NFS; DRBD primary
	RoleBackup  Role = "backup"  // DRBD secondary of a file server: the hot copy
	RoleWeb     Role = "web"     // hosted web apps
	RoleConsole Role = "console" // runs sandboxd and the browser consoles
	RoleTask    Role = "task"    // scheduled tasks
)

// Roles lists every Role in a stable order.
var Roles = []Role{RoleFile, RoleBackup, RoleWeb, RoleConsole, RoleTask}

// VolumeKind is what a volume holds.
type VolumeKind string

const (
	VolumeHome    VolumeKind = "home"    // /home and /tmp of every user, DRBD-mirrored
	VolumeLogs    VolumeKind = "logs"    // web app logs; the platform cannot run without them
	VolumeDropbox VolumeKind = "dropbox" // Dropbox shares; the platform can run without them
	VolumeBoot    VolumeKind = "boot"    // an instance's root disk
)

// VolumeKinds lists every VolumeKind in a stable order.
var VolumeKinds = []VolumeKind{VolumeHome, VolumeLogs, VolumeDropbox, VolumeBoot}

// Criticality says whether the platform can run without a volume. A zone migration moves
// critical volumes before cutover and deferrable ones in the background after it.
type Criticality string

const (
	Critical   Criticality = "critical"
	Deferrable Criticality = "deferrable"
)

// Criticalities lists every Criticality.
var Criticalities = []Criticality{Critical, Deferrable}

// DefaultCriticality is the criticality a volume of a kind gets unless told otherwise: the
// lesson of the Python 3.4 release, where logs were needed and Dropbox was not.
func DefaultCriticality(k VolumeKind) Criticality {
	if k == VolumeDropbox {
		return Deferrable
	}
	return Critical
}

// ServerState is the lifecycle state of a server as the inventory knows it.
type ServerState string

const (
	ServerPending    ServerState = "pending"
	ServerRunning    ServerState = "running"
	ServerImpaired   ServerState = "impaired" // cloud reports a failed system or instance status check
	ServerStopping   ServerState = "stopping"
	ServerStopped    ServerState = "stopped"
	ServerTerminated ServerState = "terminated"
)

// ServerStates lists every ServerState.
var ServerStates = []ServerState{ServerPending, ServerRunning, ServerImpaired, ServerStopping, ServerStopped, ServerTerminated}

// ClusterState is the lifecycle state of a cluster.
type ClusterState string

const (
	ClusterBuilding ClusterState = "building"
	ClusterLive     ClusterState = "live"
	ClusterStandby  ClusterState = "standby" // built, not serving: a failover or release target
	ClusterRetired  ClusterState = "retired"
)

// ClusterStates lists every ClusterState.
var ClusterStates = []ClusterState{ClusterBuilding, ClusterLive, ClusterStandby, ClusterRetired}

// VolumeState is the state of a volume as the cloud reports it.
type VolumeState string

const (
	VolumeCreating  VolumeState = "creating"
	VolumeAvailable VolumeState = "available"
	VolumeInUse     VolumeState = "in-use"
	VolumeDeleting  VolumeState = "deleting"
	VolumeDeleted   VolumeState = "deleted"
	VolumeError     VolumeState = "error"
)

// VolumeStates lists every VolumeState.
var VolumeStates = []VolumeState{VolumeCreating, VolumeAvailable, VolumeInUse, VolumeDeleting, VolumeDeleted, VolumeError}

// ReplicaState summarises a DRBD pair: whether the secondary is a hot copy.
type ReplicaState string

const (
	ReplicaUpToDate     ReplicaState = "uptodate"     // connected, both disks UpToDate: a hot backup
	ReplicaSyncing      ReplicaState = "syncing"      // connected, secondary Inconsistent, resync running
	ReplicaDisconnected ReplicaState = "disconnected" // no connection; the secondary is stale
	ReplicaUnknown      ReplicaState = "unknown"
)

// ReplicaStates lists every ReplicaState.
var ReplicaStates = []ReplicaState{ReplicaUpToDate, ReplicaSyncing, ReplicaDisconnected, ReplicaUnknown}

// Plan is a user's account class. It decides a console's limits.
type Plan string

const (
	PlanAnonymous Plan = "anonymous" // throw-away users of the public embed
	PlanFree      Plan = "free"
	PlanPaid      Plan = "paid"
	PlanTarpit    Plan = "tarpit" // abusers: still served, barely
)

// Plans lists every Plan.
var Plans = []Plan{PlanAnonymous, PlanFree, PlanPaid, PlanTarpit}

// NetworkPolicy is what a sandbox may reach. Every sandbox has a network namespace of its own;
// all but NetworkNone get a veth pair to the host, whose traffic sandboxd filters
// (docs/sandboxd.md, "Network").
type NetworkPolicy string

const (
	NetworkNone NetworkPolicy = "none" // loopback only
	// NetworkProxyThrottled is NetworkProxy at a trickle: the veth is shaped to a few KiB/s.
	NetworkProxyThrottled NetworkPolicy = "proxy-throttled"
	// NetworkProxy reaches allowlisted web sites through sandboxd's HTTP(S) proxy, and
	// nothing else: no DNS, no direct connection.
	NetworkProxy NetworkPolicy = "proxy"
	// NetworkInternet reaches the internet (NAT) and sandboxd's DNS relay, never the instance
	// metadata service, the host's own addresses, private ranges or other sandboxes.
	NetworkInternet NetworkPolicy = "internet"
)

// NetworkPolicies lists every NetworkPolicy, from the least reach to the most.
var NetworkPolicies = []NetworkPolicy{NetworkNone, NetworkProxyThrottled, NetworkProxy, NetworkInternet}

// Within reports whether p reaches no further than limit: what a create request may ask for
// under a plan whose network is limit.
func (p NetworkPolicy) Within(limit NetworkPolicy) bool {
	i, j := slices.Index(NetworkPolicies, p), slices.Index(NetworkPolicies, limit)
	return i >= 0 && j >= 0 && i <= j
}

// PlanNetwork is the network a plan's consoles get, and the most a request under that plan may
// ask for: anonymous none, free the allowlisting proxy, paid the internet, tarpit the proxy
// throttled.
func PlanNetwork(p Plan) NetworkPolicy {
	switch p {
	case PlanFree:
		return NetworkProxy
	case PlanPaid:
		return NetworkInternet
	case PlanTarpit:
		return NetworkProxyThrottled
	}
	return NetworkNone
}

// SandboxState is the lifecycle state of a sandbox.
type SandboxState string

const (
	SandboxStarting SandboxState = "starting"
	SandboxRunning  SandboxState = "running"
	SandboxEnded    SandboxState = "ended"
	SandboxLost     SandboxState = "lost" // its host stopped answering
)

// SandboxStates lists every SandboxState; the inventory's CHECK is tested against it.
var SandboxStates = []SandboxState{SandboxStarting, SandboxRunning, SandboxEnded, SandboxLost}

// ConsoleState is the lifecycle state of a browser console.
type ConsoleState string

const (
	ConsoleOpen   ConsoleState = "open"
	ConsoleClosed ConsoleState = "closed"
	ConsoleLost   ConsoleState = "lost" // its sandbox or host went away
)

// ConsoleStates lists every ConsoleState; the inventory's CHECK is tested against it.
var ConsoleStates = []ConsoleState{ConsoleOpen, ConsoleClosed, ConsoleLost}

// Limits are the resource limits of one sandbox.
type Limits struct {
	CPUShares   int           `json:"cpu_shares"`   // cgroup v1 cpu.shares; mapped to cpu.weight on v2
	MemoryBytes int64         `json:"memory_bytes"` // hard memory limit of the sandbox's cgroup
	Pids        int           `json:"pids"`         // maximum number of tasks
	OpenFiles   int           `json:"open_files"`   // RLIMIT_NOFILE
	FileSize    int64         `json:"file_size"`    // RLIMIT_FSIZE in bytes
	TmpBytes    int64         `json:"tmp_bytes"`    // size of the sandbox's /tmp tmpfs
	HomeBytes   int64         `json:"home_bytes"`   // total size of the user's home (the file system's quota)
	IdleTimeout time.Duration `json:"idle_timeout"` // no input and no attached client for this long ends it
	MaxLifetime time.Duration `json:"max_lifetime"` // ends it regardless of activity
}

// FirstSandboxID..LastSandboxID is the range of uids and gids sandboxes run as: above every uid and gid of the
// console hosts and of the images (system accounts, shadow's 42, nogroup's 65534, people's
// 1000..59999), so a sandbox's user can never be one of theirs. The inventory hands out uids
// from its first value; sandboxd refuses a uid or gid outside it.
const (
	FirstSandboxID = 100000
	LastSandboxID  = 1<<31 - 2
)

// PlanLimits returns the limits a plan grants. CPU shares are those of the original consoles:
// anonymous 150, free 300, paying 700, tarpit 2.
func PlanLimits(p Plan) Limits {
	const mib = 1 << 20
	switch p {
	case PlanAnonymous:
		return Limits{CPUShares: 150, MemoryBytes: 256 * mib, Pids: 64, OpenFiles: 256, FileSize: 64 * mib, TmpBytes: 64 * mib, HomeBytes: 64 * mib, IdleTimeout: 10 * time.Minute, MaxLifetime: 30 * time.Minute}
	case PlanFree:
		return Limits{CPUShares: 300, MemoryBytes: 512 * mib, Pids: 128, OpenFiles: 1024, FileSize: 512 * mib, TmpBytes: 128 * mib, HomeBytes: 512 * mib, IdleTimeout: time.Hour, MaxLifetime: 24 * time.Hour}
	case PlanPaid:
		return Limits{CPUShares: 700, MemoryBytes: 2048 * mib, Pids: 512, OpenFiles: 4096, FileSize: 4096 * mib, TmpBytes: 512 * mib, HomeBytes: 10240 * mib, IdleTimeout: 6 * time.Hour, MaxLifetime: 7 * 24 * time.Hour}
	case PlanTarpit:
		// A tarpit user keeps their files (a free user's quota), they just cannot do much.
		return Limits{CPUShares: 2, MemoryBytes: 128 * mib, Pids: 32, OpenFiles: 128, FileSize: 16 * mib, TmpBytes: 16 * mib, HomeBytes: 512 * mib, IdleTimeout: 5 * time.Minute, MaxLifetime: 30 * time.Minute}
	}
	return Limits{}
}

// Parse validates s as a member of the closed set values, naming the field in its error.
func Parse[T ~string](field, s string, values []T) (T, error) {
	if slices.Contains(values, T(s)) {
		return T(s), nil
	}
	return "", Errorf(EINVALID, "%s %q is not one of %v", field, s, values)
}

// Tags that describe what a resource is in the fleet. The DemoFleet workflow puts them on what it
// creates and FleetSync reads the inventory back from them; cloudsim's hosts take their role
// from TagRole. DRBD and md are configured on the hosts themselves, never by tags.
const (
	TagCluster      = "anyops:cluster"
	TagRole         = "anyops:role"
	TagZone         = "anyops:zone"
	TagRelease      = "anyops:release"
	TagKind         = "anyops:kind"
	TagCriticality  = "anyops:criticality"
	TagRAID         = "anyops:raid"
	TagDRBDResource = "anyops:drbd-resource" // the DRBD resource the volume backs
	TagDRBDPeer     = "anyops:drbd-peer"     // the instance holding the other replica
	TagDRBDRole     = "anyops:drbd-role"     // primary | secondary, as the fleet recorded it
	// What made a resource: the workflow, its operation (run, incident) and the step. Two
	// resources with one scope and step are one step done twice (a drill's duplicates).
	TagWorkflow = "anyops:workflow"
	TagScope    = "anyops:scope"
	TagStep     = "anyops:step"
)

// Business keys of workflows: a second request for the same thing joins the running workflow.
func FailoverWorkflowID(server string) string       { return "failover/" + server }
func BackupRebuildWorkflowID(server string) string  { return "backup-rebuild/" + server }
func ServerReplaceWorkflowID(server string) string  { return "replace/" + server }
func ZoneMigrationWorkflowID(cluster string) string { return "zone-migration/" + cluster }
func ConsoleWorkflowID(console string) string       { return "console/" + console }

// String implementations keep fmt output readable in logs.
func (r Role) String() string { return string(r) }

var _ fmt.Stringer = Role("")
