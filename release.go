package anyops

// The vocabulary of releases and storage changes. A release is a new cluster that takes over
// the live one's data; a zone migration is a release whose target zone differs (one workflow,
// one code path). A storage change changes a backup's (or file server's) volumes without ever
// leaving a file server with no hot copy.

// ReleaseWorkflowID is the business key of a release of a cluster: one at a time.
func ReleaseWorkflowID(cluster string) string { return "release/" + cluster }

// StorageChangeWorkflowID is the business key of a storage change of a server.
func StorageChangeWorkflowID(server string) string { return "storage-change/" + server }

// VolumeWay is how a release gets a volume's data to the target zone.
type VolumeWay string

const (
	// WayReplica hands over the volume's DRBD replica on a backup that is already in the
	// target zone and UpToDate: the backup's volume becomes the new file server's.
	WayReplica VolumeWay = "replica"
	// WaySnapshot takes an EBS snapshot — of the DRBD secondary where there is one, never the
	// serving disk — and creates a volume from it in the target zone.
	WaySnapshot VolumeWay = "snapshot"
	// WayInZone: the volume is in the target zone already; it is moved to the new server as it
	// is (a release that stays in its zone).
	WayInZone VolumeWay = "in-zone"
	// WayStays: the volume does not move (a backup's replica whose data a new backup
	// receives another way, a boot volume).
	WayStays VolumeWay = "stays"
)

// VolumeWays lists every VolumeWay.
var VolumeWays = []VolumeWay{WayReplica, WaySnapshot, WayInZone, WayStays}

// BlockerKind is why a release's plan cannot be carried out as it is.
type BlockerKind string

const (
	// BlockerUnknownVolume: a volume attached to a server of the cluster that the inventory
	// does not know, or knows without a kind and criticality. Someone must classify it.
	BlockerUnknownVolume BlockerKind = "unknown-volume"
	// BlockerNoCopy: a critical volume has no way to the target zone that the plan can verify
	// before the cutover (its replica is not UpToDate, its snapshot failed).
	BlockerNoCopy BlockerKind = "no-copy"
	// BlockerServerDown: a server of the cluster does not answer, so its volumes cannot be
	// read from the cloud and its host.
	BlockerServerDown BlockerKind = "server-down"
)

// BlockerKinds lists every BlockerKind.
var BlockerKinds = []BlockerKind{BlockerUnknownVolume, BlockerNoCopy, BlockerServerDown}

// Interlocks of releases and storage changes, named as overrides name them.
const (
	// InterlockNoCopyInTarget: never cut over while a critical volume lacks a verified copy in
	// the target zone.
	InterlockNoCopyInTarget Interlock = "no-copy-in-target"
	// InterlockLiveCluster: nothing terminates a server of a live cluster.
	InterlockLiveCluster Interlock = "live-cluster"
	// InterlockNoUpToDatePeer: no storage change step may leave a DRBD resource without an
	// UpToDate peer.
	InterlockNoUpToDatePeer Interlock = "no-uptodate-peer"
)
