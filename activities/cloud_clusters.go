package activities

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// ErrLiveCluster is the live-cluster interlock's refusal: nothing terminates a server of a
// live (or standby) cluster without an audited override.
const ErrLiveCluster = "LiveCluster"

// ClusterStates tells the lifecycle state of a cluster by name.
type ClusterStates interface {
	ClusterState(ctx context.Context, cluster string) (anyops.ClusterState, error)
}

// InventoryClusters answers ClusterStates from the inventory.
type InventoryClusters struct{ Store *inventory.Store }

// ClusterState reads the cluster's row.
func (i InventoryClusters) ClusterState(ctx context.Context, cluster string) (anyops.ClusterState, error) {
	c, err := i.Store.GetCluster(ctx, cluster)
	if err != nil {
		return "", err
	}
	return c.State, nil
}

// protectedClusterStates are the states in which a cluster's servers are never terminated
// without an override: live serves; standby is a release's fallback and further backup.
var protectedClusterStates = []anyops.ClusterState{anyops.ClusterLive, anyops.ClusterStandby}

// checkNotLive refuses an instance tagged with a cluster in a protected state, or with a
// cluster whose state cannot be told.
func (c *Cloud) checkNotLive(ctx context.Context, instanceID string) error {
	out, err := c.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		if isType(cloudError("DescribeInstances", err), ErrInstanceNotFound) {
			return nil // gone: nothing to protect, and TerminateInstances will say so
		}
		return cloudError("DescribeInstances", err)
	}
	var cluster string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			for _, t := range i.Tags {
				if aws.ToString(t.Key) == anyops.TagCluster {
					cluster = aws.ToString(t.Value)
				}
			}
		}
	}
	if cluster == "" {
		return nil
	}
	if c.Clusters == nil {
		return InterlockError(anyops.InterlockLiveCluster, ErrLiveCluster,
			"refusing to terminate %s of cluster %s: the cluster's state cannot be read here (no inventory)", instanceID, cluster)
	}
	state, err := c.Clusters.ClusterState(ctx, cluster)
	switch {
	case anyops.ErrorCode(err) == anyops.ENOTFOUND:
		return nil // a cluster the inventory never had: a stray instance's tag
	case err != nil:
		return classify(err)
	}
	for _, s := range protectedClusterStates {
		if state == s {
			return InterlockError(anyops.InterlockLiveCluster, ErrLiveCluster,
				"refusing to terminate %s: it is a server of cluster %s, which is %s", instanceID, cluster, state)
		}
	}
	return nil
}
