package activities

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/anyops/anyops/cloudsim"
)

// fileService makes instance a file server exporting a fresh ext4 volume at /srv/home to the
// VPC, with the host activities, and returns its address.
func (s simCloud) fileService(t *testing.T, name string) Instance {
	t.Helper()
	inst := s.launchType(t, name, "m5.large", "file")
	s.shell(t, inst.ID, "anyops-bootstrap")
	vol := s.attach(t, name+" home", inst.ID, "/dev/sdf", 10, nil)
	dev := call[VolumeDevice](t, s.e.env, s.hosts.FindVolumeDevice, VolumeDeviceInput{InstanceID: inst.ID, VolumeID: vol})
	call[MakeFilesystemOutput](t, s.e.env, s.hosts.MakeFilesystem, MakeFilesystemInput{InstanceID: inst.ID, Device: dev.Device, FSType: "ext4"})
	call[CommandResult](t, s.e.env, s.hosts.Mount, MountInput{InstanceID: inst.ID, Device: dev.Device, MountPoint: "/srv/home", FSType: "ext4"})
	call[CommandResult](t, s.e.env, s.hosts.ExportNFS, NFSExportInput{InstanceID: inst.ID, Path: "/srv/home", Clients: "10.0.0.0/16", Options: "rw,sync"})
	return inst
}

// TestCloudNFSClientsFollowTheRecord is the client half of a failover with the activities on
// cloudsim: the file service's name in a private zone of the servers' VPC; MountNFS mounts it
// by name (a second call finds it mounted); CheckMount reads and writes it; the server's
// hardware fails and CheckMount reports the mount hung — a result, not an error; the record
// moves, and RemountNFS refuses (retryably) while the client's cached answer still names the
// old server, then remounts once the answer has expired, and a retry of it changes nothing.
func TestCloudNFSClientsFollowTheRecord(t *testing.T) {
	s := newSimCloud(t)
	env := s.e.env
	file1, file2 := s.fileService(t, "file-1"), s.fileService(t, "file-2")
	web := s.launchType(t, "web-1", "c5.large", "web")
	zone := call[HostedZone](t, env, s.cloud.EnsurePrivateZone, EnsurePrivateZoneInput{Step: "zone", Name: "live.internal", VPCID: web.VPCID})
	const ttl = 86400 // long enough that the client's cached answer outlives the test's real time
	rec := SwitchRecordInput{HostedZoneID: zone.ID, Name: "files.live.internal", TTL: ttl, Values: []string{file1.PrivateIP}}
	ch := call[RecordChange](t, env, s.cloud.SwitchRecord, rec)
	call[RecordChange](t, env, s.cloud.WaitRecordInSync, WaitRecordInput{ChangeID: ch.ChangeID, PollInterval: simPoll})

	in := MountNFSInput{InstanceID: web.ID, Source: "files.live.internal:/srv/home"}
	m := call[MountNFSOutput](t, env, s.hosts.MountNFS, in)
	require.False(t, m.AlreadyMounted)
	require.Equal(t, NFSMount{Source: in.Source, MountPoint: "/home", Server: file1.PrivateIP, Options: m.Mount.Options}, m.Mount)
	again := call[MountNFSOutput](t, env, s.hosts.MountNFS, in)
	require.True(t, again.AlreadyMounted, "a second MountNFS finds it mounted")

	health := call[MountHealth](t, env, s.hosts.CheckMount, CheckMountInput{InstanceID: web.ID})
	require.True(t, health.Serving && health.Reads && health.Writes && !health.Hung, "%+v", health)
	require.Equal(t, file1.PrivateIP, health.Mount.Server)

	s.inject(t, cloudsim.Fault{Type: cloudsim.FaultHardwareFailure, InstanceID: file1.ID})
	health = call[MountHealth](t, env, s.hosts.CheckMount, CheckMountInput{InstanceID: web.ID, Timeout: 2 * time.Second})
	require.True(t, health.Mounted && health.Hung && !health.Serving, "a mount of a failed server hangs: %+v", health)

	rec.Values = []string{file2.PrivateIP}
	ch = call[RecordChange](t, env, s.cloud.SwitchRecord, rec)
	call[RecordChange](t, env, s.cloud.WaitRecordInSync, WaitRecordInput{ChangeID: ch.ChangeID, PollInterval: simPoll})
	remount := MountNFSInput{InstanceID: web.ID, Source: in.Source, ExpectedServer: file2.PrivateIP}
	_, err := callErr[MountNFSOutput](env, s.hosts.RemountNFS, remount)
	requireAppError(t, err, ErrResolvedElsewhere, false)
	health = call[MountHealth](t, env, s.hosts.CheckMount, CheckMountInput{InstanceID: web.ID, Timeout: time.Second})
	require.True(t, health.Mounted && health.Mount.Server == file1.PrivateIP, "refused before unmounting anything: %+v", health)

	s.sim.Advance(ttl * time.Second) // the cached answer expires
	moved := call[MountNFSOutput](t, env, s.hosts.RemountNFS, remount)
	require.Equal(t, file2.PrivateIP, moved.Mount.Server)
	require.False(t, moved.AlreadyMounted)
	retried := call[MountNFSOutput](t, env, s.hosts.RemountNFS, remount)
	require.True(t, retried.AlreadyMounted, "a retry of a remount that worked leaves the mount alone")
	health = call[MountHealth](t, env, s.hosts.CheckMount, CheckMountInput{InstanceID: web.ID})
	require.True(t, health.Serving, "%+v", health)
	require.Equal(t, file2.PrivateIP, health.Mount.Server)

	events := s.sim.QueryEvents(cloudsim.EventQuery{Types: []string{"nfs.client."}, Resource: web.ID})
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Type+" "+e.Data["server"].(string))
	}
	require.Equal(t, []string{"nfs.client.serving " + file1.ID, "nfs.client.stale " + file1.ID, "nfs.client.unmounted " + file1.ID,
		"nfs.client.serving " + file2.ID}, kinds)
}

// TestCloudNFSClientRefusals: MountNFS's typed errors — another file system on the mount
// point, a server that does not export to the client, a name that does not resolve — and its
// input checks.
func TestCloudNFSClientRefusals(t *testing.T) {
	s := newSimCloud(t)
	env := s.e.env
	file := s.fileService(t, "file-1")
	web := s.launchType(t, "web-1", "c5.large", "web")
	s.shell(t, file.ID, "exportfs -u 10.0.0.0/16:/srv/home", "exportfs -o rw 10.200.0.0/16:/srv/home")
	_, err := callErr[MountNFSOutput](env, s.hosts.MountNFS, MountNFSInput{InstanceID: web.ID, Source: file.PrivateIP + ":/srv/home"})
	requireAppError(t, err, ErrExportDenied, true)

	_, err = callErr[MountNFSOutput](env, s.hosts.MountNFS, MountNFSInput{InstanceID: web.ID, Source: "nowhere.live.internal:/srv/home"})
	requireAppError(t, err, ErrNameNotResolved, false)

	s.shell(t, file.ID, "exportfs -o rw 10.0.0.0/16:/srv/home")
	call[MountNFSOutput](t, env, s.hosts.MountNFS, MountNFSInput{InstanceID: web.ID, Source: file.PrivateIP + ":/srv/home", MountPoint: "/mnt"})
	_, err = callErr[MountNFSOutput](env, s.hosts.MountNFS, MountNFSInput{InstanceID: web.ID, Source: "other:/srv/home", MountPoint: "/mnt"})
	requireAppError(t, err, ErrMountpointBusy, true)

	health := call[MountHealth](t, env, s.hosts.CheckMount, CheckMountInput{InstanceID: web.ID})
	require.False(t, health.Mounted || health.Serving, "nothing on /home: %+v", health)

	for _, bad := range []MountNFSInput{
		{InstanceID: web.ID, Source: "no-colon"},
		{InstanceID: web.ID, Source: "host:relative"},
		{InstanceID: web.ID, Source: "host:/a/../etc"},
		{InstanceID: web.ID, Source: "host:/x; reboot"},
		{InstanceID: web.ID, Source: "host:/x", MountPoint: "home"},
		{InstanceID: web.ID, Source: "host:/x", Options: "vers=4.2;reboot"},
		{InstanceID: web.ID, Source: "host:/x", ExpectedServer: "10.0.0.256"},
		{Source: "host:/x"},
	} {
		_, err := callErr[MountNFSOutput](env, s.hosts.MountNFS, bad)
		requireAppError(t, err, ErrInvalidInput, true)
	}
}

// TestCloudNFSCommandFailingOnceIsSentAgain: MountNFS and RemountNFS on the Temporal dev
// server against cloudsim, each with its command made to fail once: the retry sends the
// command again and succeeds. (CheckMount has no retryable failure: what goes wrong is its
// result.)
func TestCloudNFSCommandFailingOnceIsSentAgain(t *testing.T) {
	s := newSimCloud(t)
	file := s.fileService(t, "file-1")
	web := s.launchType(t, "web-1", "c5.large", "web")
	tc, queue := temporalWorker(t, worker.Options{}, s.hosts)
	source := file.PrivateIP + ":/srv/home"
	for _, step := range []struct {
		activity, fail string
		input          map[string]any
	}{
		{"MountNFS", "timeout 180 mount", map[string]any{"InstanceID": web.ID, "Source": source}},
		{"RemountNFS", "umount -f -l", map[string]any{"InstanceID": web.ID, "Source": source}},
	} {
		t.Run(step.activity, func(t *testing.T) {
			before := s.sim.Events(0, 1)[0].Seq
			_, err := s.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultCommandFailure, InstanceID: web.ID, Command: step.fail, Count: 1})
			require.NoError(t, err)
			_, err = runActivity(t, tc, queue, "nfs-retry-"+uuid.NewString(), step.activity, step.input)
			require.NoError(t, err, "the retry after the injected failure must succeed")
			sent := s.sim.QueryEvents(cloudsim.EventQuery{Since: before, Types: []string{"ssm.command.sent"}, Resource: web.ID})
			require.Len(t, sent, 2, "the command is sent once per attempt: failed, then sent again")
		})
	}
	health := call[MountHealth](t, s.e.env, s.hosts.CheckMount, CheckMountInput{InstanceID: web.ID})
	require.True(t, health.Serving, "%+v", health)
}
