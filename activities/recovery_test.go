package activities

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
)

// requireInterlock proves err is the refusal of the interlock: non-retryable, of its type,
// and InterlockOf names it.
func requireInterlock(t *testing.T, err error, typ string, lock anyops.Interlock) {
	t.Helper()
	requireAppError(t, err, typ, true)
	got, ok := InterlockOf(err)
	require.True(t, ok && got == lock, "InterlockOf(%v) = %q, %v; want %q", err, got, ok, lock)
}

// TestCloudPromoteInterlocks proves, on real pairs set up by files on cloudsim, that
// DRBDPromote never promotes a copy that is not UpToDate and never makes a second Primary:
// an Inconsistent backup (mid-resync: the 15 July 2014 case) and an Outdated one (fenced by a
// primary that lost it) are refused with the not-uptodate interlock and left Secondary, and
// only the override of that interlock, with who and why, promotes them (with --force); a
// backup whose peer is Primary is refused with two-primaries. An UpToDate backup whose primary
// died is promoted, and promoting it again changes nothing.
func TestCloudPromoteInterlocks(t *testing.T) {
	f := newSimCloud(t)
	env := f.e.env
	override := &Override{By: "api:operator", Reason: "the file server's disks are gone; take what the backup has", Interlock: anyops.InterlockNotUpToDate}

	t.Run("inconsistent: mid-resync", func(t *testing.T) {
		file, backup := f.launchType(t, "file-a", "m5.large", "file"), f.launchType(t, "backup-a", "m5.large", "backup")
		vf, vb := f.attach(t, "a file", file.ID, "/dev/sdf", 1000, nil), f.attach(t, "a backup", backup.ID, "/dev/sdf", 1000, nil)
		f.configurePair(t, "ra", 0, file, backup, vf, vb)
		call[DRBDInitialPrimaryOutput](t, env, f.hosts.DRBDInitialPrimary, DRBDInitialPrimaryInput{Resource: "ra", Primary: file.ID, Secondary: backup.ID})
		require.Contains(t, f.shell(t, backup.ID, "drbdadm status ra").Stdout, "disk:Inconsistent")
		f.inject(t, cloudsim.Fault{Type: cloudsim.FaultHardwareFailure, InstanceID: file.ID})

		_, err := callErr[DRBDPromoteOutput](env, f.hosts.DRBDPromote, DRBDPromoteInput{InstanceID: backup.ID, Resources: []string{"ra"}})
		requireInterlock(t, err, ErrNotUpToDate, anyops.InterlockNotUpToDate)
		require.Contains(t, f.shell(t, backup.ID, "drbdadm status ra").Stdout, "ra role:Secondary", "refused: still Secondary")

		other := *override
		other.Interlock = anyops.InterlockTwoPrimaries
		_, err = callErr[DRBDPromoteOutput](env, f.hosts.DRBDPromote, DRBDPromoteInput{InstanceID: backup.ID, Resources: []string{"ra"}, Override: &other})
		requireInterlock(t, err, ErrNotUpToDate, anyops.InterlockNotUpToDate)

		out := call[DRBDPromoteOutput](t, env, f.hosts.DRBDPromote, DRBDPromoteInput{InstanceID: backup.ID, Resources: []string{"ra"}, Override: override})
		require.Equal(t, []string{"ra"}, out.Forced)
		require.Contains(t, f.shell(t, backup.ID, "drbdadm status ra").Stdout, "ra role:Primary")
	})

	t.Run("outdated: fenced by its live primary", func(t *testing.T) {
		file, backup := f.launchType(t, "file-b", "m5.large", "file"), f.launchType(t, "backup-b", "m5.large", "backup")
		vf, vb := f.attach(t, "b file", file.ID, "/dev/sdf", 1, nil), f.attach(t, "b backup", backup.ID, "/dev/sdf", 1, nil)
		f.configurePair(t, "rb", 1, file, backup, vf, vb)
		call[DRBDInitialPrimaryOutput](t, env, f.hosts.DRBDInitialPrimary, DRBDInitialPrimaryInput{Resource: "rb", Primary: file.ID, Secondary: backup.ID, SkipInitialSync: true})
		f.inject(t, cloudsim.Fault{Type: cloudsim.FaultDRBDDisconnect, InstanceID: backup.ID, Resource: "rb"})
		require.Contains(t, f.shell(t, backup.ID, "drbdadm status rb").Stdout, "disk:Outdated")

		_, err := callErr[DRBDPromoteOutput](env, f.hosts.DRBDPromote, DRBDPromoteInput{InstanceID: backup.ID, Resources: []string{"rb"}})
		requireInterlock(t, err, ErrNotUpToDate, anyops.InterlockNotUpToDate)
		require.Contains(t, f.shell(t, backup.ID, "drbdadm status rb").Stdout, "rb role:Secondary")
	})

	t.Run("two primaries", func(t *testing.T) {
		file, backup := f.launchType(t, "file-c", "m5.large", "file"), f.launchType(t, "backup-c", "m5.large", "backup")
		vf, vb := f.attach(t, "c file", file.ID, "/dev/sdf", 1, nil), f.attach(t, "c backup", backup.ID, "/dev/sdf", 1, nil)
		f.configurePair(t, "rc", 2, file, backup, vf, vb)
		call[DRBDInitialPrimaryOutput](t, env, f.hosts.DRBDInitialPrimary, DRBDInitialPrimaryInput{Resource: "rc", Primary: file.ID, Secondary: backup.ID, SkipInitialSync: true})

		_, err := callErr[DRBDPromoteOutput](env, f.hosts.DRBDPromote, DRBDPromoteInput{InstanceID: backup.ID, Resources: []string{"rc"}})
		requireInterlock(t, err, ErrTwoPrimaries, anyops.InterlockTwoPrimaries)
		require.Contains(t, f.shell(t, backup.ID, "drbdadm status rc").Stdout, "rc role:Secondary")

		// The file server dies: the backup is UpToDate and no peer is Primary any more.
		f.inject(t, cloudsim.Fault{Type: cloudsim.FaultHardwareFailure, InstanceID: file.ID})
		out := call[DRBDPromoteOutput](t, env, f.hosts.DRBDPromote, DRBDPromoteInput{InstanceID: backup.ID, Resources: []string{"rc"}})
		require.Equal(t, []string{"rc"}, out.Promoted)
		require.Empty(t, out.Forced)
		again := call[DRBDPromoteOutput](t, env, f.hosts.DRBDPromote, DRBDPromoteInput{InstanceID: backup.ID, Resources: []string{"rc"}})
		require.Equal(t, []string{"rc"}, again.AlreadyPrimary, "a retry changes nothing")
	})
}

// TestCloudFenceAndMoveInterlocks proves a failed server is fenced by a forced stop (stopping
// at once, whatever the failed hardware takes to say stopped; repeatable), that its data
// volumes are force-detached only once it is fenced — before, the unfenced interlock refuses
// unless overridden — and that a server holding a data volume is not terminated (the only-copy
// interlock) while one without is.
func TestCloudFenceAndMoveInterlocks(t *testing.T) {
	f := newSimCloud(t)
	env := f.e.env
	file := f.launchType(t, "file", "m5.large", "file")
	data := f.attach(t, "data", file.ID, "/dev/sdf", 1, nil)
	f.inject(t, cloudsim.Fault{Type: cloudsim.FaultHardwareFailure, InstanceID: file.ID})

	_, err := callErr[Attachment](env, f.cloud.DetachFromFenced, DetachFromFencedInput{VolumeID: data, InstanceID: file.ID})
	requireInterlock(t, err, ErrUnfenced, anyops.InterlockUnfenced)
	vol := call[Volume](t, env, f.cloud.WaitVolumeAttached, WaitVolumeInput{VolumeID: data, PollInterval: simPoll})
	require.Equal(t, "attached", vol.Attachments[0].State, "refused: still attached")

	_, err = callErr[InstanceStateChange](env, f.cloud.TerminateUnused, TerminateUnusedInput{InstanceID: file.ID})
	requireInterlock(t, err, ErrOnlyCopy, anyops.InterlockOnlyCopy)

	fence := call[Fence](t, env, f.cloud.FenceInstance, FenceInput{InstanceID: file.ID})
	require.Equal(t, "stopping", fence.State, "failed hardware stops slowly, but the forced stop fences at once")
	require.Equal(t, "stopping", call[Fence](t, env, f.cloud.FenceInstance, FenceInput{InstanceID: file.ID}).State, "fencing again is harmless")

	call[Attachment](t, env, f.cloud.DetachFromFenced, DetachFromFencedInput{VolumeID: data, InstanceID: file.ID})
	call[Volume](t, env, f.cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: data, PollInterval: simPoll})
	call[Attachment](t, env, f.cloud.DetachFromFenced, DetachFromFencedInput{VolumeID: data, InstanceID: file.ID})

	t.Run("the override, with a reason, passes the unfenced interlock", func(t *testing.T) {
		live := f.launchType(t, "live", "m5.large", "file")
		v := f.attach(t, "live data", live.ID, "/dev/sdf", 1, nil)
		_, err := callErr[Attachment](env, f.cloud.DetachFromFenced, DetachFromFencedInput{VolumeID: v, InstanceID: live.ID, Override: &Override{By: "api:operator"}})
		requireAppError(t, err, ErrInvalidInput, true)
		call[Attachment](t, env, f.cloud.DetachFromFenced, DetachFromFencedInput{VolumeID: v, InstanceID: live.ID,
			Override: &Override{By: "api:operator", Reason: "the host is wedged but answers EC2", Interlock: anyops.InterlockUnfenced}})
		call[Volume](t, env, f.cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: v, PollInterval: simPoll})
	})

	spare := f.launchType(t, "spare", "m5.large", "file")
	out := call[InstanceStateChange](t, env, f.cloud.TerminateUnused, TerminateUnusedInput{InstanceID: spare.ID})
	require.Equal(t, "shutting-down", out.Current)
}
