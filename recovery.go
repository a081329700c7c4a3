package anyops

// The vocabulary of recoveries: the workflows an alarm on a server starts (failover of a file
// server, rebuild of a backup, replacement of a web, console or task server), the ways a
// failover races back to serving, and the safety interlocks only an audited override passes.

// The file service of a cluster: its clients (web, console and task servers) mount it by a name
// in the cluster's private hosted zone, so that a failover moves the name, not the clients.
const (
	// FileServiceExport is the path the file server exports.
	FileServiceExport = "/srv/home"
	// FileServiceTTL is the record's TTL in seconds: how long a client may keep resolving the
	// name to a server that has failed over.
	FileServiceTTL = 10
)

// FileServiceZone is the private hosted zone of a cluster's names, e.g. live.internal.
func FileServiceZone(cluster string) string { return cluster + ".internal" }

// FileServiceName is the name the cluster's clients mount its file service by.
func FileServiceName(cluster string) string { return "files." + FileServiceZone(cluster) }

// FileServiceSource is what a client mounts: NAME:/EXPORT.
func FileServiceSource(cluster string) string {
	return FileServiceName(cluster) + ":" + FileServiceExport
}

// RecoveryWay is one of the ways a failover races back to a serving file server.
type RecoveryWay string

const (
	// WayPromote promotes the hot backup: only when every DRBD resource of the file server is
	// UpToDate on it.
	WayPromote RecoveryWay = "promote"
	// WayRepair stops the failed instance (forced after a timeout) and starts it on new
	// hardware, then checks its boot disk.
	WayRepair RecoveryWay = "repair"
	// WayReplace takes the zone's warm spare, or builds a new file server, and moves the data
	// volumes of the fenced old primary to it.
	WayReplace RecoveryWay = "replace"
)

// RecoveryWays lists every RecoveryWay in the order a failover starts them.
var RecoveryWays = []RecoveryWay{WayPromote, WayRepair, WayReplace}

// LoserPolicy says what becomes of the ways that did not win a failover's race.
type LoserPolicy string

const (
	// LosersKeep keeps what a losing way made useful: the repaired old primary, or the
	// replacement server with the old primary's volumes, becomes the new hot backup; an unused
	// new server becomes the zone's warm spare. Whatever cannot be used is cleaned up.
	LosersKeep LoserPolicy = "keep"
	// LosersClean cancels every losing way and cleans up everything it made; redundancy is
	// then restored by a new backup seeded from the serving volumes.
	LosersClean LoserPolicy = "clean"
)

// LoserPolicies lists every LoserPolicy; the first is the default.
var LoserPolicies = []LoserPolicy{LosersKeep, LosersClean}

// SeedPolicy says how a new backup gets its first copy of the data.
type SeedPolicy string

const (
	// SeedAuto seeds from a snapshot of the serving volumes when that is estimated to finish
	// before a full DRBD resync would, else resyncs in full.
	SeedAuto     SeedPolicy = "auto"
	SeedSnapshot SeedPolicy = "snapshot" // always from a snapshot, then resync what changed since
	SeedResync   SeedPolicy = "resync"   // always a full DRBD resync from the serving side
)

// SeedPolicies lists every SeedPolicy; the first is the default.
var SeedPolicies = []SeedPolicy{SeedAuto, SeedSnapshot, SeedResync}

// Interlock names a safety rule of the recoveries. Each is code that refuses the unsafe step;
// only an override (an audited human decision with a reason, naming the interlock) passes it.
type Interlock string

const (
	// InterlockNotUpToDate: never promote a copy that is not UpToDate (Outdated, Inconsistent).
	InterlockNotUpToDate Interlock = "not-uptodate"
	// InterlockTwoPrimaries: never make a second DRBD Primary of a resource.
	InterlockTwoPrimaries Interlock = "two-primaries"
	// InterlockUnfenced: never force-detach data volumes from, or take over for, a server that
	// is not fenced.
	InterlockUnfenced Interlock = "unfenced"
	// InterlockOnlyCopy: never delete or detach for good the only copy of data.
	InterlockOnlyCopy Interlock = "only-copy"
	// InterlockNoHotBackup: never end a recovery with no hot backup without saying so; with the
	// override it ends without one, and says so.
	InterlockNoHotBackup Interlock = "no-hot-backup"
)

// Interlocks lists every Interlock.
var Interlocks = []Interlock{InterlockNotUpToDate, InterlockTwoPrimaries, InterlockUnfenced, InterlockOnlyCopy, InterlockNoHotBackup}
