package activities

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
)

// hostsOn returns the cloud and host activities against endpoint, with a test activity
// environment that runs them.
func hostsOn(t *testing.T, endpoint string) (*Cloud, *Hosts, *testEnv) {
	t.Helper()
	clients, err := NewClients(context.Background(), config.AWS{Region: homeRegion, Endpoint: endpoint})
	require.NoError(t, err)
	cloud := NewCloud(clients)
	hosts := &Hosts{Clients: clients, PollInterval: 10 * time.Millisecond}
	env, hb := activityEnv(t, cloud, hosts)
	return cloud, hosts, &testEnv{env, hb}
}

// TestCloudHostsRunCommandOnMoto proves SendCommand and GetCommandInvocation speak SSM as
// moto understands it. moto runs nothing, so only the round trip is checked.
func TestCloudHostsRunCommandOnMoto(t *testing.T) {
	cloud, hosts, e := hostsOn(t, testenv.Moto(t))
	inst := call[Instance](t, e.env, cloud.RunInstance, RunInstanceInput{Step: "launch", ImageID: testImage, InstanceType: "t3.micro"})
	res := call[CommandResult](t, e.env, hosts.RunCommand, RunCommandInput{InstanceID: inst.ID, Commands: []string{"true"}})
	require.NotEmpty(t, res.CommandID)
	require.Equal(t, "Success", res.Status)
	require.Equal(t, 0, res.ExitCode)
}

// TestCloudHostsOnCloudsim runs the host activities' real scripts on cloudsim's simulated
// hosts: a DRBD pair resyncing to a hot copy, mount, NFS export, fsck, RAID assembly,
// service restart, a package upgrade and health probes, each twice where a retry must be
// harmless, and the typed errors where it must not go on. The hosts are Nitro (m5): volumes
// are found by id. The DRBD pair is a pre-configured fixture; DRBD set up by files is in
// hosts_setup_test.go.
func TestCloudHostsOnCloudsim(t *testing.T) {
	s := newSimCloud(t)
	hosts, env := s.hosts, s.e.env
	file, backup := s.launchAs(t, "file-1", "file"), s.launchAs(t, "backup-1", "backup")
	// The cluster build step: installs and starts the role's packages and services.
	boot := call[CommandResult](t, env, hosts.RunCommand, RunCommandInput{InstanceID: file, Commands: []string{"anyops-bootstrap"}})
	require.Contains(t, boot.Stdout, "bootstrapped")
	// attach returns the device the host sees the new volume as.
	attach := func(step, instance, device string, size int32, tags map[string]string) string {
		v := s.attach(t, step, instance, device, size, tags)
		return call[VolumeDevice](t, env, hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: instance, VolumeID: v}).Device
	}
	s.drbdPair(t, file, backup, 20, nil)

	t.Run("DRBD resyncs to a hot copy", func(t *testing.T) {
		var seen []float64
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := call[DRBDStatusOutput](t, env, hosts.DRBDStatus, DRBDStatusInput{InstanceID: file, Resource: "home0"})
			require.Len(t, st.Resources, 1)
			r := st.Resources[0]
			require.Equal(t, "home0", r.Name)
			require.Equal(t, "Primary", r.Role)
			require.Equal(t, "UpToDate", r.Disk)
			require.Len(t, r.Peers, 1)
			if r.InSync() {
				require.Equal(t, "UpToDate", r.Peers[0].PeerDisk)
				break
			}
			if r.Peers[0].Replication == "SyncSource" {
				seen = append(seen, r.Peers[0].Done)
			}
			require.True(t, time.Now().Before(deadline), "home0 never got in sync; last status %+v", r)
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("resync done%% seen: %v", seen)
		for i := 1; i < len(seen); i++ {
			require.GreaterOrEqual(t, seen[i], seen[i-1])
		}
		_, err := callErr[DRBDStatusOutput](env, hosts.DRBDStatus, DRBDStatusInput{InstanceID: file, Resource: "nosuch"})
		requireAppError(t, err, ErrCommandFailed, false)
	})

	t.Run("mount, export, fsck, unmount", func(t *testing.T) {
		call[MakeFilesystemOutput](t, env, hosts.MakeFilesystem, MakeFilesystemInput{InstanceID: file, Device: "/dev/drbd0", FSType: "ext4"})
		mount := MountInput{InstanceID: file, Device: "/dev/drbd0", MountPoint: "/srv/home", FSType: "ext4", Options: "noatime"}
		call[CommandResult](t, env, hosts.Mount, mount)
		call[CommandResult](t, env, hosts.Mount, mount) // already mounted there: success

		scratch := attach("scratch", file, "/dev/sdj", 1, nil)
		call[MakeFilesystemOutput](t, env, hosts.MakeFilesystem, MakeFilesystemInput{InstanceID: file, Device: scratch, FSType: "ext4"})
		_, err := callErr[CommandResult](env, hosts.Mount, MountInput{InstanceID: file, Device: scratch, MountPoint: "/srv/home"})
		requireAppError(t, err, ErrMountpointBusy, true)

		export := NFSExportInput{InstanceID: file, Path: "/srv/home", Clients: "10.0.0.0/16", Options: "rw,sync,no_subtree_check"}
		call[CommandResult](t, env, hosts.ExportNFS, export)
		call[CommandResult](t, env, hosts.ExportNFS, export)

		_, err = callErr[FsckOutput](env, hosts.Fsck, FsckInput{InstanceID: file, Device: "/dev/drbd0"})
		requireAppError(t, err, ErrDeviceMounted, true)

		call[CommandResult](t, env, hosts.UnexportNFS, export)
		call[CommandResult](t, env, hosts.UnexportNFS, export) // gone already: success
		call[CommandResult](t, env, hosts.Umount, UmountInput{InstanceID: file, MountPoint: "/srv/home"})
		call[CommandResult](t, env, hosts.Umount, UmountInput{InstanceID: file, MountPoint: "/srv/home"})

		fsck := call[FsckOutput](t, env, hosts.Fsck, FsckInput{InstanceID: file, Device: "/dev/drbd0"})
		require.True(t, fsck.Clean, "fsck: %+v", fsck.Result)
	})

	t.Run("RAID assembles once", func(t *testing.T) {
		// Members of an array made elsewhere (a fixture: they carry no superblocks).
		m1 := attach("md member 1", file, "/dev/sdg", 5, map[string]string{cloudsim.FixtureTagRAID: "md0"})
		m2 := attach("md member 2", file, "/dev/sdh", 5, map[string]string{cloudsim.FixtureTagRAID: "md0"})
		raid := AssembleRAIDInput{InstanceID: file, Device: "/dev/md0", Members: []string{m1, m2}}
		first := call[AssembleRAIDOutput](t, env, hosts.AssembleRAID, raid)
		require.False(t, first.AlreadyActive, "output: %+v", first.Result)
		again := call[AssembleRAIDOutput](t, env, hosts.AssembleRAID, raid)
		require.True(t, again.AlreadyActive)
	})

	t.Run("services, packages, probes", func(t *testing.T) {
		st := call[ServiceStatus](t, env, hosts.RestartService, ServiceInput{InstanceID: file, Service: "nfs-server"})
		require.Equal(t, "active", st.Active)
		_, err := callErr[ServiceStatus](env, hosts.RestartService, ServiceInput{InstanceID: file, Service: "nosuch"})
		requireAppError(t, err, ErrServiceNotFound, true)
		_, err = callErr[UpgradePackageOutput](env, hosts.UpgradePackage, UpgradePackageInput{InstanceID: file, Packages: []string{"no-such-package"}})
		requireAppError(t, err, ErrPackageNotFound, true)

		up := call[UpgradePackageOutput](t, env, hosts.UpgradePackage, UpgradePackageInput{InstanceID: file, Packages: []string{"openssl", "libssl1.0.0"}})
		require.Equal(t, map[string]string{"openssl": "1.0.1f-1ubuntu2.2", "libssl1.0.0": "1.0.1f-1ubuntu2.2"}, up.Versions)

		nfs := call[HealthProbeOutput](t, env, hosts.HealthProbe, HealthProbeInput{InstanceID: file, URL: "http://localhost:2049/"})
		require.True(t, nfs.Healthy, "%+v", nfs)
		web := call[HealthProbeOutput](t, env, hosts.HealthProbe, HealthProbeInput{InstanceID: file, URL: "http://localhost/"})
		require.False(t, web.Healthy, "a file server runs no nginx")
		require.Equal(t, 7, web.CurlExit)
	})

	t.Run("exit codes become typed errors", func(t *testing.T) {
		_, err := callErr[CommandResult](env, hosts.RunCommand, RunCommandInput{InstanceID: file, Commands: []string{"no-such-tool --help"}})
		requireAppError(t, err, ErrCommandNotFound, true)
		_, err = callErr[CommandResult](env, hosts.RunCommand, RunCommandInput{InstanceID: file, Commands: []string{"echo half-done", "exit 3"}})
		requireAppError(t, err, ErrCommandFailed, false)
		var details CommandResult
		require.NoError(t, applicationDetails(err, &details))
		require.Equal(t, 3, details.ExitCode)
		require.Equal(t, "half-done\n", details.Stdout)
	})
}

// TestCloudHostsRefuseBadInput: inputs that could smuggle shell syntax or name nothing are
// refused before anything is sent.
func TestCloudHostsRefuseBadInput(t *testing.T) {
	// No endpoint is reachable here: a refused input never reaches the network.
	_, hosts, e := hostsOn(t, "http://127.0.0.1:1")
	cases := []struct {
		name  string
		fn    any
		input any
	}{
		{"device with shell syntax", hosts.Fsck, FsckInput{InstanceID: "i-1", Device: "/dev/sdf; rm -rf /"}},
		{"mount point not absolute", hosts.Mount, MountInput{InstanceID: "i-1", Device: "/dev/sdf", MountPoint: "srv"}},
		{"mount point with ..", hosts.Umount, UmountInput{InstanceID: "i-1", MountPoint: "/srv/../etc"}},
		{"mount options with a quote", hosts.Mount, MountInput{InstanceID: "i-1", Device: "/dev/sdf", MountPoint: "/srv", Options: "rw'"}},
		{"service with a space", hosts.RestartService, ServiceInput{InstanceID: "i-1", Service: "nginx reload"}},
		{"package with a dollar", hosts.UpgradePackage, UpgradePackageInput{InstanceID: "i-1", Packages: []string{"$(id)"}}},
		{"no packages", hosts.UpgradePackage, UpgradePackageInput{InstanceID: "i-1"}},
		{"NFS clients with a space", hosts.ExportNFS, NFSExportInput{InstanceID: "i-1", Path: "/srv", Clients: "a b"}},
		{"probe URL not http", hosts.HealthProbe, HealthProbeInput{InstanceID: "i-1", URL: "file:///etc/passwd"}},
		{"DRBD resource with a slash", hosts.DRBDStatus, DRBDStatusInput{InstanceID: "i-1", Resource: "a/b"}},
		{"no commands", hosts.RunCommand, RunCommandInput{InstanceID: "i-1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := callErr[any](e.env, tc.fn, tc.input)
			requireAppError(t, err, ErrInvalidInput, true)
		})
	}
}

func TestCloudShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      `'plain'`,
		"it's":       `'it'\''s'`,
		"$(id) `x`":  "'$(id) `x`'",
		"":           `''`,
		"a'b'c":      `'a'\''b'\''c'`,
		"/dev/sdf 1": `'/dev/sdf 1'`,
	} {
		require.Equal(t, want, shellQuote(in), "shellQuote(%q)", in)
	}
}

// TestCloudDeleteVolumeVerifiesItsReplica: a volume whose copy is a DRBD replica may be
// deleted only when that replica, named by instance and resource, is UpToDate on another
// instance, as `drbdadm status` there says: not while it is still resyncing, not when the
// volume backs another resource, not when the named instance holds the volume itself.
func TestCloudDeleteVolumeVerifiesItsReplica(t *testing.T) {
	s := newSimCloud(t)
	cloud, hosts, env := s.cloud, s.hosts, s.e.env
	poll := simPoll
	file, backup := s.launchAs(t, "file-1", "file"), s.launchAs(t, "backup-1", "backup")
	// 200 GiB: the secondary's first resync takes a few real seconds.
	primary, _ := s.drbdPair(t, file, backup, 200, nil)
	replica := &VerifiedCopy{ReplicaInstanceID: backup, DRBDResource: "home0"}
	refusals := []struct {
		name string
		copy *VerifiedCopy
	}{
		{"the replica is still resyncing", replica},
		{"the volume backs another resource", &VerifiedCopy{ReplicaInstanceID: backup, DRBDResource: "home1"}},
		{"the named instance holds the volume itself", &VerifiedCopy{ReplicaInstanceID: file, DRBDResource: "home0"}},
		{"no copy is named", nil},
	}
	for _, tc := range refusals {
		_, err := callErr[DeleteVolumeOutput](env, cloud.DeleteVolume, DeleteVolumeInput{VolumeID: primary, Copy: tc.copy})
		requireAppError(t, err, ErrNoVerifiedCopy, true)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		st := call[DRBDStatusOutput](t, env, hosts.DRBDStatus, DRBDStatusInput{InstanceID: file, Resource: "home0"})
		if len(st.Resources) == 1 && st.Resources[0].InSync() {
			break
		}
		require.True(t, time.Now().Before(deadline), "home0 never got in sync: %+v", st)
		time.Sleep(50 * time.Millisecond)
	}
	call[Attachment](t, env, cloud.DetachVolume, DetachVolumeInput{VolumeID: primary, InstanceID: file})
	call[Volume](t, env, cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: primary, PollInterval: poll})
	del := call[DeleteVolumeOutput](t, env, cloud.DeleteVolume, DeleteVolumeInput{VolumeID: primary, Copy: replica})
	require.True(t, del.Deleted)
	require.Equal(t, backup+"/home0", del.VerifiedCopy)
}
