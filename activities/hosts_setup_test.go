package activities

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// shell runs a script on instance and returns its result.
func (s simCloud) shell(t *testing.T, instance string, lines ...string) CommandResult {
	t.Helper()
	return call[CommandResult](t, s.e.env, s.hosts.RunCommand, RunCommandInput{InstanceID: instance, Commands: lines})
}

// TestCloudHostsFindVolumeDevice proves volumes are found by their id, not by the name they
// were attached as: on Nitro (m5, c5) the device is /dev/nvmeNn1 with its stable by-id link,
// on Xen (m4) the xvd form of the requested name; EC2 keeps reporting the requested name; and
// a volume attached elsewhere or not at all is a typed error.
func TestCloudHostsFindVolumeDevice(t *testing.T) {
	f := newSimCloud(t)
	nitro, c5, xen := f.launchType(t, "nitro", "m5.large", ""), f.launchType(t, "compute", "c5.xlarge", ""), f.launchType(t, "xen", "m4.large", "")
	first := f.attach(t, "first", nitro.ID, "/dev/sdf", 1, nil)
	second := f.attach(t, "second", nitro.ID, "/dev/xvdg", 1, nil)
	onC5 := f.attach(t, "on c5", c5.ID, "/dev/sdk", 1, nil)
	onXen := f.attach(t, "on xen", xen.ID, "/dev/sdf", 1, nil)
	cases := []struct {
		name     string
		instance string
		volume   string
		want     VolumeDevice
	}{
		{"m5 whatever the requested sd name", nitro.ID, first, VolumeDevice{VolumeID: first, Device: "/dev/nvme1n1", ByID: NVMeByIDPrefix + strings.Replace(first, "-", "", 1), Requested: "/dev/sdf"}},
		{"m5 whatever the requested xvd name", nitro.ID, second, VolumeDevice{VolumeID: second, Device: "/dev/nvme2n1", ByID: NVMeByIDPrefix + strings.Replace(second, "-", "", 1), Requested: "/dev/xvdg"}},
		{"c5", c5.ID, onC5, VolumeDevice{VolumeID: onC5, Device: "/dev/nvme1n1", ByID: NVMeByIDPrefix + strings.Replace(onC5, "-", "", 1), Requested: "/dev/sdk"}},
		{"m4 is Xen: the xvd name, no by-id link", xen.ID, onXen, VolumeDevice{VolumeID: onXen, Device: "/dev/xvdf", Requested: "/dev/sdf"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := call[VolumeDevice](t, f.e.env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: tc.instance, VolumeID: tc.volume})
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.want.ByID != "", got.StablePath() == got.ByID)
		})
	}

	_, err := callErr[VolumeDevice](f.e.env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: xen.ID, VolumeID: first})
	requireAppError(t, err, ErrVolumeAttachedElsewhere, true)
	loose := call[Volume](t, f.e.env, f.cloud.CreateVolume, CreateVolumeInput{Step: "loose", Zone: zoneA, SizeGiB: 1})
	_, err = callErr[VolumeDevice](f.e.env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: xen.ID, VolumeID: loose.ID})
	requireAppError(t, err, ErrVolumeNotAttached, true)
	_, err = callErr[VolumeDevice](f.e.env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: "i-1; reboot", VolumeID: first})
	requireAppError(t, err, ErrInvalidInput, true)
}

// configurePair sets DRBD resource name up between a and b over their volumes through the
// activities, as on real hosts, and returns its configuration.
func (f simCloud) configurePair(t *testing.T, name string, minor int, a, b Instance, va, vb string) DRBDResourceConfig {
	t.Helper()
	env := f.e.env
	var nodes []DRBDNode
	for i, side := range []struct {
		inst Instance
		vol  string
	}{{a, va}, {b, vb}} {
		dev := call[VolumeDevice](t, env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: side.inst.ID, VolumeID: side.vol})
		hostname := call[string](t, env, f.hosts.HostName, InstanceRef{InstanceID: side.inst.ID})
		nodes = append(nodes, DRBDNode{Hostname: hostname, Address: side.inst.PrivateIP, NodeID: i, Disk: dev.StablePath()})
	}
	conf := DRBDResourceConfig{Name: name, Minor: minor, Port: 7789 + minor, Nodes: nodes}
	for _, inst := range []Instance{a, b} {
		call[ConfigureDRBDOutput](t, env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: inst.ID, Resource: conf})
		call[CreateDRBDMetadataOutput](t, env, f.hosts.CreateDRBDMetadata, DRBDResourceInput{InstanceID: inst.ID, Resource: name})
		call[DRBDUpOutput](t, env, f.hosts.DRBDUp, DRBDResourceInput{InstanceID: inst.ID, Resource: name})
	}
	return conf
}

// TestCloudHostsDRBDSetUp sets a DRBD pair up through the activities, as on real Nitro hosts,
// and proves each step is harmless to repeat: the resource file written once (the same content
// again changes nothing; a change on an up resource is adjusted), metadata created once and
// never over a file system, the resource brought up once, and the initial primary chosen only
// for a brand new pair — the interlock refuses to force a side when either disk has held data.
func TestCloudHostsDRBDSetUp(t *testing.T) {
	f := newSimCloud(t)
	env := f.e.env
	file, backup := f.launchType(t, "file", "m5.2xlarge", ""), f.launchType(t, "backup", "m5.2xlarge", "")
	vf, vb := f.attach(t, "home0 file", file.ID, "/dev/sdf", 10, nil), f.attach(t, "home0 backup", backup.ID, "/dev/sdf", 10, nil)
	devF := call[VolumeDevice](t, env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: file.ID, VolumeID: vf})
	hostF := call[string](t, env, f.hosts.HostName, InstanceRef{InstanceID: file.ID})
	hostB := call[string](t, env, f.hosts.HostName, InstanceRef{InstanceID: backup.ID})
	devB := call[VolumeDevice](t, env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: backup.ID, VolumeID: vb})
	conf := DRBDResourceConfig{Name: "home0", Minor: 0, Port: 7789, Nodes: []DRBDNode{
		{Hostname: hostF, Address: file.PrivateIP, NodeID: 0, Disk: devF.StablePath()},
		{Hostname: hostB, Address: backup.PrivateIP, NodeID: 1, Disk: devB.StablePath()},
	}}
	require.Contains(t, conf.Render(), "disk "+NVMeByIDPrefix, "Nitro disks are named by their stable link")

	t.Run("the resource file", func(t *testing.T) {
		first := call[ConfigureDRBDOutput](t, env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: file.ID, Resource: conf})
		require.True(t, first.Changed)
		require.False(t, first.Adjusted, "nothing was up to adjust")
		again := call[ConfigureDRBDOutput](t, env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: file.ID, Resource: conf})
		require.False(t, again.Changed, "the same content is no change")
		require.Equal(t, conf.Render(), f.shell(t, file.ID, "cat /etc/drbd.d/home0.res").Stdout)
		require.Equal(t, "global_common.conf\nhome0.res\n", f.shell(t, file.ID, "ls /etc/drbd.d").Stdout, "no temporary file left")
		call[ConfigureDRBDOutput](t, env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: backup.ID, Resource: conf})

		stranger := f.launchType(t, "stranger", "m5.large", "")
		_, err := callErr[ConfigureDRBDOutput](env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: stranger.ID, Resource: conf})
		requireAppError(t, err, ErrInvalidInput, true)
	})

	t.Run("metadata once, and never over a file system", func(t *testing.T) {
		for _, inst := range []Instance{file, backup} {
			md := call[CreateDRBDMetadataOutput](t, env, f.hosts.CreateDRBDMetadata, DRBDResourceInput{InstanceID: inst.ID, Resource: "home0"})
			require.True(t, md.Created)
			require.False(t, md.Generation.HasData())
			again := call[CreateDRBDMetadataOutput](t, env, f.hosts.CreateDRBDMetadata, DRBDResourceInput{InstanceID: inst.ID, Resource: "home0"})
			require.False(t, again.Created, "metadata already there is kept")
		}
		formatted := f.attach(t, "formatted", file.ID, "/dev/sdg", 1, nil)
		dev := call[VolumeDevice](t, env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: file.ID, VolumeID: formatted})
		call[MakeFilesystemOutput](t, env, f.hosts.MakeFilesystem, MakeFilesystemInput{InstanceID: file.ID, Device: dev.Device, FSType: "ext4"})
		other := conf
		other.Name, other.Minor, other.Port = "data1", 1, 7790
		other.Nodes = []DRBDNode{{Hostname: hostF, Address: file.PrivateIP, NodeID: 0, Disk: dev.StablePath()}, conf.Nodes[1]}
		call[ConfigureDRBDOutput](t, env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: file.ID, Resource: other})
		_, err := callErr[CreateDRBDMetadataOutput](env, f.hosts.CreateDRBDMetadata, DRBDResourceInput{InstanceID: file.ID, Resource: "data1"})
		requireAppError(t, err, ErrDeviceHasData, true)
		require.Equal(t, "ext4\n", f.shell(t, file.ID, "blkid -o value -s TYPE "+dev.Device).Stdout, "the file system is untouched")
		f.shell(t, file.ID, "rm /etc/drbd.d/data1.res")
	})

	t.Run("up once, then the initial primary of a brand new pair", func(t *testing.T) {
		for _, inst := range []Instance{file, backup} {
			require.False(t, call[DRBDUpOutput](t, env, f.hosts.DRBDUp, DRBDResourceInput{InstanceID: inst.ID, Resource: "home0"}).AlreadyUp)
			require.True(t, call[DRBDUpOutput](t, env, f.hosts.DRBDUp, DRBDResourceInput{InstanceID: inst.ID, Resource: "home0"}).AlreadyUp)
		}
		in := DRBDInitialPrimaryInput{Resource: "home0", Primary: file.ID, Secondary: backup.ID, SkipInitialSync: true}
		first := call[DRBDInitialPrimaryOutput](t, env, f.hosts.DRBDInitialPrimary, in)
		require.True(t, first.SyncSkipped)
		again := call[DRBDInitialPrimaryOutput](t, env, f.hosts.DRBDInitialPrimary, in)
		require.True(t, again.AlreadyPrimary)
		st := call[DRBDStatusOutput](t, env, f.hosts.DRBDStatus, DRBDStatusInput{InstanceID: file.ID, Resource: "home0"})
		require.True(t, st.Resources[0].InSync(), "both new empty disks are in sync at once: %+v", st)
		require.Equal(t, hostB, st.Resources[0].Peers[0].Name, "the connection is named after the peer's on section")

		_, err := callErr[DRBDInitialPrimaryOutput](env, f.hosts.DRBDInitialPrimary, DRBDInitialPrimaryInput{Resource: "home0", Primary: backup.ID, Secondary: file.ID})
		requireAppError(t, err, ErrDRBDPeerPrimary, true)
	})

	t.Run("a changed file on an up resource is adjusted", func(t *testing.T) {
		moved := conf
		moved.Port = 7800
		for _, inst := range []Instance{file, backup} {
			out := call[ConfigureDRBDOutput](t, env, f.hosts.ConfigureDRBD, ConfigureDRBDInput{InstanceID: inst.ID, Resource: moved})
			require.True(t, out.Changed && out.Adjusted, "%+v", out)
		}
		require.Contains(t, f.shell(t, file.ID, "drbdadm status home0").Stdout, hostB+" role:Secondary")
	})

	t.Run("the interlock: never force a side when either disk has held data", func(t *testing.T) {
		// A second pair, forced on the file server: its backup is Inconsistent while it
		// resyncs (1000 GiB: hours simulated, seconds real), but the file server's disk has
		// data — so forcing the backup would destroy it.
		web := f.launchType(t, "web", "c5.xlarge", "")
		v1, v2 := f.attach(t, "home1 file", file.ID, "/dev/sdh", 1000, nil), f.attach(t, "home1 web", web.ID, "/dev/sdh", 1000, nil)
		f.configurePair(t, "home1", 1, file, web, v1, v2)
		forced := call[DRBDInitialPrimaryOutput](t, env, f.hosts.DRBDInitialPrimary, DRBDInitialPrimaryInput{Resource: "home1", Primary: file.ID, Secondary: web.ID})
		require.True(t, forced.Forced, "no skip asked: a full initial sync")
		require.Contains(t, f.shell(t, file.ID, "drbdadm status home1").Stdout, "replication:SyncSource")
		f.shell(t, file.ID, "drbdadm secondary home1")
		_, err := callErr[DRBDInitialPrimaryOutput](env, f.hosts.DRBDInitialPrimary, DRBDInitialPrimaryInput{Resource: "home1", Primary: web.ID, Secondary: file.ID})
		requireAppError(t, err, ErrDRBDNotNew, true)
		require.Contains(t, f.shell(t, web.ID, "drbdadm status home1").Stdout, "home1 role:Secondary\n  disk:Inconsistent", "the backup was not promoted")
	})
}

// TestCloudHostsRAIDAndFilesystem proves md arrays and file systems are made once: an array is
// created only when no member carries a superblock, assembled from them after a stop, never
// created over another array's members; a file system is made once and never over other data.
func TestCloudHostsRAIDAndFilesystem(t *testing.T) {
	f := newSimCloud(t)
	env := f.e.env
	host := f.launchType(t, "file", "m5.large", "")
	var members []string
	for i, dev := range []string{"/dev/sdf", "/dev/sdg", "/dev/sdh"} {
		v := f.attach(t, "member "+dev, host.ID, dev, 1, nil)
		d := call[VolumeDevice](t, env, f.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: host.ID, VolumeID: v})
		require.Equal(t, "/dev/nvme"+string(rune('1'+i))+"n1", d.Device)
		members = append(members, d.Device)
	}
	md0 := EnsureRAIDInput{InstanceID: host.ID, Device: "/dev/md0", Level: "0", Members: members[:2]}
	require.True(t, call[EnsureRAIDOutput](t, env, f.hosts.EnsureRAID, md0).Created)
	require.True(t, call[EnsureRAIDOutput](t, env, f.hosts.EnsureRAID, md0).AlreadyActive)

	fs := MakeFilesystemInput{InstanceID: host.ID, Device: "/dev/md0", FSType: "ext4"}
	require.True(t, call[MakeFilesystemOutput](t, env, f.hosts.MakeFilesystem, fs).Created)
	require.False(t, call[MakeFilesystemOutput](t, env, f.hosts.MakeFilesystem, fs).Created, "made once")
	_, err := callErr[MakeFilesystemOutput](env, f.hosts.MakeFilesystem, MakeFilesystemInput{InstanceID: host.ID, Device: "/dev/md0", FSType: "xfs"})
	requireAppError(t, err, ErrDeviceHasData, true)

	f.shell(t, host.ID, "mdadm --stop /dev/md0")
	again := call[EnsureRAIDOutput](t, env, f.hosts.EnsureRAID, md0)
	require.True(t, again.Assembled, "%+v", again.Result)
	require.Equal(t, "ext4\n", f.shell(t, host.ID, "blkid -o value -s TYPE /dev/md0").Stdout, "assembled, not created anew")

	// A new array over a member of md0: refused, md0 stays as it was.
	f.shell(t, host.ID, "mdadm --stop /dev/md0")
	_, err = callErr[EnsureRAIDOutput](env, f.hosts.EnsureRAID, EnsureRAIDInput{InstanceID: host.ID, Device: "/dev/md1", Level: "0", Members: members[1:]})
	requireAppError(t, err, ErrDeviceHasData, true)
	_, err = callErr[MakeFilesystemOutput](env, f.hosts.MakeFilesystem, MakeFilesystemInput{InstanceID: host.ID, Device: members[0], FSType: "ext4"})
	requireAppError(t, err, ErrDeviceHasData, true)
	require.True(t, call[EnsureRAIDOutput](t, env, f.hosts.EnsureRAID, md0).Assembled)
}

// TestCloudHostsSetupRefuseBadInput: inputs that could smuggle shell syntax into a resource
// file or a script, or that describe no valid resource, are refused before anything is sent.
func TestCloudHostsSetupRefuseBadInput(t *testing.T) {
	_, hosts, e := hostsOn(t, "http://127.0.0.1:1") // nothing listens: a refusal never reaches it
	good := DRBDResourceConfig{Name: "home0", Minor: 0, Port: 7789, Nodes: []DRBDNode{
		{Hostname: "ip-10-0-1-10", Address: "10.0.1.10", NodeID: 0, Disk: "/dev/nvme1n1"},
		{Hostname: "ip-10-0-1-11", Address: "10.0.1.11", NodeID: 1, Disk: "/dev/nvme1n1"},
	}}
	with := func(change func(c *DRBDResourceConfig)) ConfigureDRBDInput {
		c := good
		c.Nodes = append([]DRBDNode(nil), good.Nodes...)
		change(&c)
		return ConfigureDRBDInput{InstanceID: "i-0123456789abcdef0", Resource: c}
	}
	cases := []struct {
		name  string
		fn    any
		input any
	}{
		{"hostname with a brace", hosts.ConfigureDRBD, with(func(c *DRBDResourceConfig) { c.Nodes[0].Hostname = "a}b" })},
		{"hostname with a quote", hosts.ConfigureDRBD, with(func(c *DRBDResourceConfig) { c.Nodes[0].Hostname = "a'b" })},
		{"disk with a semicolon", hosts.ConfigureDRBD, with(func(c *DRBDResourceConfig) { c.Nodes[1].Disk = "/dev/x;y" })},
		{"address not IPv4", hosts.ConfigureDRBD, with(func(c *DRBDResourceConfig) { c.Nodes[1].Address = "fd01::1" })},
		{"the same node id twice", hosts.ConfigureDRBD, with(func(c *DRBDResourceConfig) { c.Nodes[1].NodeID = 0 })},
		{"one node", hosts.ConfigureDRBD, with(func(c *DRBDResourceConfig) { c.Nodes = c.Nodes[:1] })},
		{"port zero", hosts.ConfigureDRBD, with(func(c *DRBDResourceConfig) { c.Port = 0 })},
		{"resource name with a slash", hosts.ConfigureDRBD, with(func(c *DRBDResourceConfig) { c.Name = "a/b" })},
		{"create-md of a resource with a space", hosts.CreateDRBDMetadata, DRBDResourceInput{InstanceID: "i-1", Resource: "a b"}},
		{"primary on both sides", hosts.DRBDInitialPrimary, DRBDInitialPrimaryInput{Resource: "r0", Primary: "i-1", Secondary: "i-1"}},
		{"volume id with shell syntax", hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: "i-0123456789abcdef0", VolumeID: "vol-1$(x)"}},
		{"raid level 5", hosts.EnsureRAID, EnsureRAIDInput{InstanceID: "i-1", Device: "/dev/md0", Level: "5", Members: []string{"/dev/drbd0"}}},
		{"raid member with a space", hosts.EnsureRAID, EnsureRAIDInput{InstanceID: "i-1", Device: "/dev/md0", Level: "0", Members: []string{"/dev/drbd0 /dev/sda"}}},
		{"file system type btrfs", hosts.MakeFilesystem, MakeFilesystemInput{InstanceID: "i-1", Device: "/dev/md0", FSType: "btrfs"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := callErr[any](e.env, tc.fn, tc.input)
			requireAppError(t, err, ErrInvalidInput, true)
		})
	}
}

// TestCloudDRBDGenerationParse reads get-gi's line, and refuses what is not one.
func TestCloudDRBDGenerationParse(t *testing.T) {
	gi, err := ParseDRBDGeneration("anyops-created\n0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0:1:0:0:0:0:0:0:0\n")
	require.NoError(t, err)
	require.Equal(t, DRBDGeneration{Current: DRBDJustCreated}, gi)
	require.False(t, gi.HasData())
	gi, err = ParseDRBDGeneration("8E4A7A0F2B1C3D45:0000000000000000:0000000000000000:0000000000000000:1:1:1:0:0:0:0:1:0:0:0:1")
	require.NoError(t, err)
	require.Equal(t, DRBDGeneration{Current: "8E4A7A0F2B1C3D45", Consistent: true, UpToDate: true, Primary: true}, gi)
	require.True(t, gi.HasData())
	for _, bad := range []string{"", "No valid meta data found", "0004:0:0:0:0:0:0", "ZZZZZZZZZZZZZZZZ:0000000000000000:0000000000000000:0000000000000000:0:0:0"} {
		_, err := ParseDRBDGeneration(bad)
		require.Error(t, err, "%q", bad)
	}
}
