package activities

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
)

// TestCloudHostsSeedNewNode seeds a third node from a snapshot of the backup's disk through
// the activities, in the order of the DRBD user's guide's truck-based replication, while the
// file server keeps writing: the new node resyncs only what was written since the seed point,
// the old backup stays UpToDate all along, the copy's node id is fixed once (a second
// DRBDAdoptCopy changes nothing), and clearing the bitmaps is refused while another away peer
// still lacks data.
func TestCloudHostsSeedNewNode(t *testing.T) {
	f := newSimCloud(t)
	env := f.e.env
	file, backup, next := f.launchType(t, "file", "m5.2xlarge", ""), f.launchType(t, "backup", "m5.2xlarge", ""), f.launchType(t, "next", "m5.2xlarge", "")
	vf, vb := f.attach(t, "home0 file", file.ID, "/dev/sdf", 50, nil), f.attach(t, "home0 backup", backup.ID, "/dev/sdf", 50, nil)
	pair := f.configurePair(t, "home0", 0, file, backup, vf, vb)
	call[DRBDInitialPrimaryOutput](t, env, f.hosts.DRBDInitialPrimary, DRBDInitialPrimaryInput{Resource: "home0", Primary: file.ID, Secondary: backup.ID, SkipInitialSync: true})
	f.sim.Advance(10 * time.Minute) // the file server writes; the backup gets it all
	var err error

	hostN := call[string](t, env, f.hosts.HostName, InstanceRef{InstanceID: next.ID})
	three := pair
	three.Nodes = append(append([]DRBDNode(nil), pair.Nodes...), DRBDNode{Hostname: hostN, Address: next.PrivateIP, NodeID: 2, Disk: DRBDDiskPending})
	for _, inst := range []Instance{file, backup} {
		call[ConfigureDRBDOutput](t, env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: inst.ID, Resource: three})
	}
	require.Equal(t, three, call[DRBDResourceConfig](t, env, f.hosts.DRBDConfigOf, DRBDResourceInput{InstanceID: backup.ID, Resource: "home0"}), "the file read back")
	_, err = callErr[DRBDResourceConfig](env, f.hosts.DRBDConfigOf, DRBDResourceInput{InstanceID: next.ID, Resource: "home0"})
	requireAppError(t, err, ErrInvalidInput, true)
	_, err = callErr[DRBDNewGenerationOutput](env, f.hosts.DRBDNewGeneration, DRBDNewGenerationInput{InstanceID: backup.ID, Resource: "home0", ClearBitmap: true, SeedPeer: hostN})
	requireAppError(t, err, ErrInvalidInput, true) // only on the Primary
	seed := call[DRBDNewGenerationOutput](t, env, f.hosts.DRBDNewGeneration, DRBDNewGenerationInput{InstanceID: file.ID, Resource: "home0", ClearBitmap: true, SeedPeer: hostN})
	snap := call[Snapshot](t, env, f.cloud.CreateSnapshot, CreateSnapshotInput{Step: "seed home0", VolumeID: vb, Name: "home0 seed"})
	rotated := call[DRBDNewGenerationOutput](t, env, f.hosts.DRBDNewGeneration, DRBDNewGenerationInput{InstanceID: file.ID, Resource: "home0", SeedPeer: hostN})
	require.NotEqual(t, seed.Generation.Current, rotated.Generation.Current)
	call[Snapshot](t, env, f.cloud.WaitSnapshot, WaitSnapshotInput{SnapshotID: snap.ID, PollInterval: simPoll})

	vn := call[Volume](t, env, f.cloud.CreateVolumeFromSnapshot, CreateVolumeFromSnapshotInput{Step: "seed volume", SnapshotID: snap.ID, Zone: zoneA, VolumeType: "gp3", InitRateMiBps: 300})
	call[Volume](t, env, f.cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: vn.ID, PollInterval: simPoll})
	call[Attachment](t, env, f.cloud.AttachVolume, AttachVolumeInput{VolumeID: vn.ID, InstanceID: next.ID, Device: "/dev/sdf"})
	call[Volume](t, env, f.cloud.WaitVolumeAttached, WaitVolumeInput{VolumeID: vn.ID, PollInterval: simPoll})
	devN := call[VolumeDevice](t, env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: next.ID, VolumeID: vn.ID})
	three.Nodes[2].Disk = devN.StablePath()
	for _, inst := range []Instance{file, backup, next} {
		call[ConfigureDRBDOutput](t, env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: inst.ID, Resource: three})
	}
	adopt := DRBDAdoptCopyInput{InstanceID: next.ID, Resource: "home0", Minor: 0, Disk: devN.StablePath(), FromNodeID: 1, ToNodeID: 2}
	require.True(t, call[DRBDAdoptCopyOutput](t, env, f.hosts.DRBDAdoptCopy, adopt).Adopted)
	require.False(t, call[DRBDAdoptCopyOutput](t, env, f.hosts.DRBDAdoptCopy, adopt).Adopted, "a retry finds the node id changed")
	mark := len(f.sim.Events(0, 10000))
	call[DRBDUpOutput](t, env, f.hosts.DRBDUp, DRBDResourceInput{InstanceID: next.ID, Resource: "home0"})
	var resync string
	for _, e := range f.sim.Events(0, 10000)[mark:] {
		if e.Type == "drbd.resync-started" {
			resync = e.Message
		}
	}
	require.Contains(t, resync, "the blocks changed since", "the seeded node resyncs only the delta: %s", resync)
	require.NotContains(t, resync, "the whole device")
	st := call[DRBDStatusOutput](t, env, f.hosts.DRBDStatus, DRBDStatusInput{InstanceID: backup.ID, Resource: "home0"})
	require.Equal(t, "UpToDate", st.Resources[0].Disk, "the old backup stays hot")
	f.sim.Advance(5 * time.Minute)
	for _, inst := range []Instance{file, backup, next} {
		st := call[DRBDStatusOutput](t, env, f.hosts.DRBDStatus, DRBDStatusInput{InstanceID: inst.ID, Resource: "home0"})
		require.True(t, st.Resources[0].InSync(), "home0 on %s: %s", inst.ID, FormatDRBDStatus(st.Resources))
	}

	// The old backup leaves: the two-node file on the others, then DRBDRemove on it (twice).
	two := three
	two.Nodes = []DRBDNode{three.Nodes[0], three.Nodes[2]}
	for _, inst := range []Instance{file, next} {
		call[ConfigureDRBDOutput](t, env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: inst.ID, Resource: two})
	}
	call[CommandResult](t, env, f.hosts.DRBDRemove, DRBDResourceInput{InstanceID: backup.ID, Resource: "home0"})
	call[CommandResult](t, env, f.hosts.DRBDRemove, DRBDResourceInput{InstanceID: backup.ID, Resource: "home0"})
	st = call[DRBDStatusOutput](t, env, f.hosts.DRBDStatus, DRBDStatusInput{InstanceID: file.ID, Resource: "home0"})
	require.Len(t, st.Resources[0].Peers, 1)
	require.True(t, st.Resources[0].InSync())

	// With the new node cut off and lagging, clearing the bitmaps for another seed is refused.
	if _, err := f.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultDRBDDisconnect, InstanceID: next.ID}); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(time.Minute)
	_, err = callErr[DRBDNewGenerationOutput](env, f.hosts.DRBDNewGeneration, DRBDNewGenerationInput{InstanceID: file.ID, Resource: "home0", ClearBitmap: true, SeedPeer: "someone-else"})
	requireAppError(t, err, ErrDRBDPeerLagging, true)
	require.True(t, strings.Contains(err.Error(), hostN))
	call[DRBDNewGenerationOutput](t, env, f.hosts.DRBDNewGeneration, DRBDNewGenerationInput{InstanceID: file.ID, Resource: "home0", ClearBitmap: true, SeedPeer: "someone-else",
		Override: &Override{By: "test", Reason: "proving the override passes", Interlock: anyops.InterlockNoUpToDatePeer}})
}

// FuzzDRBDResourceConfig: whatever a resource file says, the parser does not panic, and what
// it accepts renders back to a file it reads the same. Corpus: testdata/fuzz/FuzzDRBDResourceConfig.
func FuzzDRBDResourceConfig(f *testing.F) {
	f.Add(DRBDResourceConfig{Name: "live-r0", Minor: 2, Port: 7791, Nodes: []DRBDNode{
		{Hostname: "ip-10-0-1-10", Address: "10.0.1.10", NodeID: 0, Disk: NVMeByIDPrefix + "vol0123"},
		{Hostname: "ip-10-0-1-11", Address: "10.0.1.11", NodeID: 1, Disk: "/dev/xvdf"},
		{Hostname: "ip-10-0-3-20", Address: "10.0.3.20", NodeID: 2, Disk: DRBDDiskPending}}}.Render())
	f.Add("resource r {\n  device /dev/drbd0;\n  on a {\n    node-id 40;\n  }\n}\n")
	f.Add("resource r {\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseDRBDResourceConfig(text)
		if err != nil {
			return
		}
		again, err := ParseDRBDResourceConfig(c.Render())
		if err != nil {
			t.Fatalf("a rendered file does not parse: %v\n%s", err, c.Render())
		}
		require.Equal(t, c, again)
	})
}
