package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// TestCloudTerminateLiveClusterRefused is the live-cluster interlock (October 2023: a live
// cluster terminated by mistake during a release): an instance of a live or standby cluster
// is not terminated without an audited override, nor one whose cluster's state cannot be
// read; one of a retired cluster, or of none, is.
func TestCloudTerminateLiveClusterRefused(t *testing.T) {
	f := newSimCloud(t)
	env := f.e.env
	store := openStore(t)
	ctx := context.Background()
	for _, c := range []inventory.Cluster{{Name: "live", State: anyops.ClusterLive}, {Name: "old", State: anyops.ClusterStandby}, {Name: "gone", State: anyops.ClusterRetired}} {
		if _, err := store.UpsertZone(ctx, inventory.Zone{Name: zoneA, Region: "us-east-1"}); err != nil {
			t.Fatal(err)
		}
		c.Zone = zoneA
		if _, err := store.UpsertCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	launch := func(step, cluster string) string {
		in := RunInstanceInput{Step: step, Name: step, ImageID: testImage, InstanceType: "c5.large", Zone: zoneA}
		if cluster != "" {
			in.Tags = map[string]string{anyops.TagCluster: cluster}
		}
		return call[Instance](t, env, f.cloud.RunInstance, in).ID
	}
	live, standby, retired, loose := launch("web1", "live"), launch("old-web1", "old"), launch("gone-web1", "gone"), launch("stray", "")

	_, err := callErr[InstanceStateChange](env, f.cloud.TerminateInstance, TerminateInstanceInput{InstanceID: live})
	requireAppError(t, err, ErrLiveCluster, true) // no inventory wired in: refused, not guessed

	f.cloud.Clusters = InventoryClusters{Store: store}
	for _, id := range []string{live, standby} {
		_, err := callErr[InstanceStateChange](env, f.cloud.TerminateInstance, TerminateInstanceInput{InstanceID: id})
		requireAppError(t, err, ErrLiveCluster, true)
		lock, ok := InterlockOf(err)
		require.True(t, ok)
		require.Equal(t, anyops.InterlockLiveCluster, lock)
	}
	_, err = callErr[InstanceStateChange](env, f.cloud.TerminateInstance, TerminateInstanceInput{InstanceID: live, Override: &Override{By: "ops"}})
	requireAppError(t, err, ErrInvalidInput, true) // an override needs a reason
	for _, id := range []string{retired, loose} {
		require.Equal(t, id, call[InstanceStateChange](t, env, f.cloud.TerminateInstance, TerminateInstanceInput{InstanceID: id}).InstanceID)
	}
	call[InstanceStateChange](t, env, f.cloud.TerminateInstance, TerminateInstanceInput{InstanceID: live,
		Override: &Override{By: "api:ops", Reason: "the cluster was rebuilt elsewhere", Interlock: anyops.InterlockLiveCluster}})
}
