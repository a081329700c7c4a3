package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// Teardown takes a whole cluster out of the cloud and the inventory: a drill's when it ends, a
// release's old cluster after its retention. Each step holds its interlock itself.
type Teardown struct {
	Store   *inventory.Store
	Clients *Clients
	// CallTimeout bounds each cloud call of TerminateCluster and DeleteClusterVolumes (zero:
	// DefaultTeardownCallTimeout).
	CallTimeout time.Duration
}

// DefaultTeardownCallTimeout bounds one cloud call of a teardown step. The steps heartbeat,
// which tells Temporal of a dead worker; a call whose answer never reaches a live worker is
// what this bounds: the attempt fails, retryably, and its retry asks again (the calls are
// safe to repeat) instead of waiting out the HTTP client's minute.
const DefaultTeardownCallTimeout = 20 * time.Second

// call runs one cloud call of a step under CallTimeout.
func (t *Teardown) call(ctx context.Context, what string, f func(ctx context.Context) error) error {
	limit := t.CallTimeout
	if limit <= 0 {
		limit = DefaultTeardownCallTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := f(cctx)
	if err != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within %s: %w", what, limit, err)
	}
	return err
}

// ErrClusterLive is TerminateCluster's refusal: the cluster is not retired.
const ErrClusterLive = "ClusterLive"

// ClusterRef names a cluster.
type ClusterRef struct {
	Cluster string `json:"cluster"`
}

// RetireCluster marks a cluster retired in the inventory: the decision that allows its
// teardown. live is never retired (inventory.Store.RetireCluster).
func (t *Teardown) RetireCluster(ctx context.Context, in ClusterRef) error {
	return classify(t.Store.RetireCluster(ctx, in.Cluster))
}

// TerminateClusterResult lists the instances the call asked EC2 to terminate.
type TerminateClusterResult struct {
	Instances []string `json:"instances"`
}

// TerminateCluster terminates every instance tagged with the cluster that is not terminated
// yet. The interlock: the cluster must be retired in the inventory — a live, building or
// standby cluster (or one the inventory does not know) is refused with the non-retryable
// ClusterLive, whatever its instances are. Terminating what is terminating already is EC2's
// no-op, so retries are safe.
func (t *Teardown) TerminateCluster(ctx context.Context, in ClusterRef) (TerminateClusterResult, error) {
	defer heartbeatWhile(ctx, time.Second)()
	c, err := t.Store.GetCluster(ctx, in.Cluster)
	switch {
	case anyops.ErrorCode(err) == anyops.ENOTFOUND:
		return TerminateClusterResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s is not in the inventory: only a retired cluster is terminated", in.Cluster), ErrClusterLive, nil)
	case err != nil:
		return TerminateClusterResult{}, classify(err)
	case c.State != anyops.ClusterRetired:
		return TerminateClusterResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s is %s: never terminate a cluster that is not retired", in.Cluster, c.State), ErrClusterLive, nil)
	}
	fleet, err := t.describeCluster(ctx, in.Cluster)
	if err != nil {
		return TerminateClusterResult{}, err
	}
	var res TerminateClusterResult
	for _, i := range fleet.Instances {
		if i.State != "terminated" && i.State != "shutting-down" {
			res.Instances = append(res.Instances, i.ID)
		}
	}
	if len(res.Instances) == 0 {
		return res, nil
	}
	if err := t.call(ctx, "TerminateInstances", func(ctx context.Context) error {
		_, err := t.Clients.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: res.Instances})
		return cloudError("TerminateInstances", err)
	}); err != nil {
		return res, err
	}
	activity.GetLogger(ctx).Info("terminated the instances of a retired cluster", "cluster", in.Cluster, "instances", res.Instances)
	return res, nil
}

// DeleteClusterVolumesInput deletes a retired cluster's volumes under an override.
type DeleteClusterVolumesInput struct {
	Cluster string `json:"cluster"`
	// Override is who allows deleting volumes without a verified copy, and why (a drill's
	// throw-away data). Required: a cluster's volumes are otherwise kept.
	Override Override `json:"override"`
}

// DeleteClusterVolumesResult lists what was deleted.
type DeleteClusterVolumesResult struct {
	Deleted []string `json:"deleted"`
}

// AuditDrillVolumeDeleted is the audit action of each volume a teardown deletes under its
// override.
const AuditDrillVolumeDeleted = "drill.volume-deleted"

// DeleteClusterVolumes deletes every volume tagged with a retired cluster, each through
// DeleteVolume under the input's override and audited first (one audit event per volume, kept
// once across retries). A volume still attached (its instance still terminating) is a
// retryable IncorrectState: the activity is retried until EC2 has detached it.
func (t *Teardown) DeleteClusterVolumes(ctx context.Context, in DeleteClusterVolumesInput) (DeleteClusterVolumesResult, error) {
	if in.Override.By == "" || in.Override.Reason == "" {
		return DeleteClusterVolumesResult{}, invalidInput("deleting a cluster's volumes needs an override with who and why")
	}
	defer heartbeatWhile(ctx, time.Second)()
	c, err := t.Store.GetCluster(ctx, in.Cluster)
	if err != nil {
		return DeleteClusterVolumesResult{}, classify(err)
	}
	if c.State != anyops.ClusterRetired {
		return DeleteClusterVolumesResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s is %s: its volumes are deleted only once it is retired", in.Cluster, c.State), ErrClusterLive, nil)
	}
	fleet, err := t.describeCluster(ctx, in.Cluster)
	if err != nil {
		return DeleteClusterVolumesResult{}, err
	}
	var res DeleteClusterVolumesResult
	for _, v := range fleet.Volumes {
		if v.State == "deleting" || v.State == "deleted" {
			continue
		}
		if v.State == "in-use" || len(v.Attachments) > 0 {
			return res, temporal.NewApplicationError(fmt.Sprintf("volume %s is still attached: waiting for its instance to go", v.ID), ErrIncorrectState)
		}
		key := "teardown/" + in.Cluster + "/" + v.ID
		if _, err := t.Store.RecordAudit(ctx, inventory.AuditEvent{Actor: in.Override.By, Action: AuditDrillVolumeDeleted, Subject: v.ID,
			Summary:        map[string]any{"cluster": in.Cluster, "reason": in.Override.Reason, "name": v.Name, "kind": v.Tags[anyops.TagKind]},
			IdempotencyKey: &key}); err != nil {
			return res, classify(err)
		}
		ov := in.Override
		if err := t.call(ctx, "DeleteVolume "+v.ID, func(ctx context.Context) error {
			_, err := (&Cloud{Clients: t.Clients}).DeleteVolume(ctx, DeleteVolumeInput{VolumeID: v.ID, Override: &ov})
			return err
		}); err != nil {
			return res, err
		}
		res.Deleted = append(res.Deleted, v.ID)
		activity.RecordHeartbeat(ctx, res)
	}
	return res, nil
}

// describeCluster describes the instances and volumes tagged with the cluster.
func (t *Teardown) describeCluster(ctx context.Context, cluster string) (Fleet, error) {
	var fleet Fleet
	err := t.call(ctx, "describe "+cluster, func(ctx context.Context) error {
		var err error
		fleet, err = (&Cloud{Clients: t.Clients}).DescribeFleet(ctx, DescribeFleetInput{Tags: map[string]string{anyops.TagCluster: cluster}})
		return err
	})
	return fleet, err
}

// RetireClusterRows marks the retired cluster's rows gone (inventory.Store.RetireClusterRows).
func (t *Teardown) RetireClusterRows(ctx context.Context, in ClusterRef) error {
	return classify(t.Store.RetireClusterRows(ctx, in.Cluster))
}
