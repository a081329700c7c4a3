package activities

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/anyops/anyops"
)

// TestCloudModifyVolumeInPlace changes an attached gp3 volume's IOPS and size in place and
// waits for it, proves a retry finds the change made (Already, no second modification), that a
// magnetic volume is refused before the cloud is asked (its change goes by snapshot), and that
// the fifth modification in a day is the typed ModificationRateExceeded.
func TestCloudModifyVolumeInPlace(t *testing.T) {
	f := newSimCloud(t)
	env := f.e.env
	inst := f.launch(t, "backup")
	vol := f.attach(t, "home0", inst, "/dev/sdf", 100, nil)
	want := anyops.VolumeSpec{Type: anyops.VolumeGP3, SizeGiB: 200, Iops: 6000}
	m := call[VolumeModification](t, env, f.cloud.ModifyVolume, ModifyVolumeInput{VolumeID: vol, Spec: want})
	require.False(t, m.Already)
	require.Equal(t, "modifying", m.State)
	done := call[VolumeModification](t, env, f.cloud.WaitVolumeModification, WaitVolumeModificationInput{VolumeID: vol, PollInterval: simPoll})
	require.Contains(t, []string{"optimizing", "completed"}, done.State)
	again := call[VolumeModification](t, env, f.cloud.ModifyVolume, ModifyVolumeInput{VolumeID: vol, Spec: want})
	require.True(t, again.Already, "a retry finds the volume changed")
	call[VolumeModification](t, env, f.cloud.WaitVolumeModification, WaitVolumeModificationInput{VolumeID: vol, UntilCompleted: true, PollInterval: simPoll})
	v := call[Volume](t, env, f.cloud.WaitVolumeAttached, WaitVolumeInput{VolumeID: vol, PollInterval: simPoll})
	require.True(t, sameSpec(v.SpecOf(), want), "the volume is now %+v", v.SpecOf())

	magnetic := call[Volume](t, env, f.cloud.CreateVolume, CreateVolumeInput{Step: "magnetic", Zone: zoneA, SizeGiB: 100, VolumeType: "standard"})
	call[Volume](t, env, f.cloud.WaitVolumeAvailable, WaitVolumeInput{VolumeID: magnetic.ID, PollInterval: simPoll})
	_, err := callErr[VolumeModification](env, f.cloud.ModifyVolume, ModifyVolumeInput{VolumeID: magnetic.ID, Spec: anyops.VolumeSpec{Type: anyops.VolumeGP3, SizeGiB: 100}})
	requireAppError(t, err, ErrInvalidInput, true)

	for _, size := range []int32{300, 400, 500} {
		call[VolumeModification](t, env, f.cloud.ModifyVolume, ModifyVolumeInput{VolumeID: vol, Spec: anyops.VolumeSpec{Type: anyops.VolumeGP3, SizeGiB: size, Iops: 6000}})
		f.sim.Advance(time.Hour) // optimizing done
	}
	_, err = callErr[VolumeModification](env, f.cloud.ModifyVolume, ModifyVolumeInput{VolumeID: vol, Spec: anyops.VolumeSpec{Type: anyops.VolumeGP3, SizeGiB: 600, Iops: 6000}})
	requireAppError(t, err, ErrModificationRateExceeded, true)
}
