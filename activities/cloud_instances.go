package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// RunInstanceInput launches one instance.
type RunInstanceInput struct {
	// Step names the workflow step; with the workflow id and Scope it makes the ClientToken,
	// so retries of this activity launch one instance.
	Step string
	// Scope names the operation the step belongs to; with the workflow id and Step it makes
	// the idempotency token. Empty: the calling workflow's run, so a later run under the same
	// workflow id (another incident) makes new resources. A workflow whose operation spans
	// runs (continue-as-new, a retried workflow) passes workflow.GetInfo(ctx).FirstRunID; one
	// whose later runs must find what the first made (DemoFleet) passes a fixed scope.
	Scope            string
	Name             string
	ImageID          string
	InstanceType     string
	Zone             string
	SubnetID         string
	SecurityGroupIDs []string
	KeyName          string
	UserData         string // base64, as EC2 wants it
	Tags             map[string]string
}

// RunInstance launches one instance with a ClientToken from the workflow id, scope and step:
// a retry returns the instance the first attempt launched.
func (c *Cloud) RunInstance(ctx context.Context, in RunInstanceInput) (Instance, error) {
	id, err := stepToken(ctx, in.Scope, in.Step)
	if err != nil {
		return Instance{}, err
	}
	if in.ImageID == "" || in.InstanceType == "" {
		return Instance{}, invalidInput("ImageID and InstanceType are required")
	}
	req := &ec2.RunInstancesInput{
		ClientToken:       aws.String(id.token),
		ImageId:           aws.String(in.ImageID),
		InstanceType:      types.InstanceType(in.InstanceType),
		MinCount:          aws.Int32(1),
		MaxCount:          aws.Int32(1),
		TagSpecifications: tagSpec(types.ResourceTypeInstance, ownTags(in.Tags, in.Name, id)),
	}
	if in.Zone != "" {
		req.Placement = &types.Placement{AvailabilityZone: aws.String(in.Zone)}
	}
	if in.SubnetID != "" {
		req.SubnetId = aws.String(in.SubnetID)
	}
	if len(in.SecurityGroupIDs) > 0 {
		req.SecurityGroupIds = in.SecurityGroupIDs
	}
	if in.KeyName != "" {
		req.KeyName = aws.String(in.KeyName)
	}
	if in.UserData != "" {
		req.UserData = aws.String(in.UserData)
	}
	out, err := c.Clients.EC2.RunInstances(ctx, req)
	if err != nil {
		return Instance{}, cloudError("RunInstances", err)
	}
	if len(out.Instances) != 1 {
		return Instance{}, fmt.Errorf("RunInstances: got %d instances, want 1", len(out.Instances))
	}
	return toInstance(out.Instances[0]), nil
}

// TerminateInstanceInput terminates one instance.
type TerminateInstanceInput struct {
	InstanceID string
	// Override passes the live-cluster interlock (its Reason required).
	Override *Override
}

// TerminateInstance terminates an instance. Terminating a terminated instance succeeds, so
// retries are safe. Interlock (live-cluster): an instance tagged with a cluster that is live
// or standby — serving, or kept as a release's fallback — is refused with the non-retryable
// LiveCluster unless the input carries an Override; so is one whose cluster's state cannot be
// read (no inventory wired in: refuse rather than guess).
func (c *Cloud) TerminateInstance(ctx context.Context, in TerminateInstanceInput) (InstanceStateChange, error) {
	if in.InstanceID == "" {
		return InstanceStateChange{}, invalidInput("InstanceID is required")
	}
	if in.Override != nil && strings.TrimSpace(in.Override.Reason) == "" {
		return InstanceStateChange{}, invalidInput("an Override needs a Reason")
	}
	if in.Override == nil {
		if err := c.checkNotLive(ctx, in.InstanceID); err != nil {
			return InstanceStateChange{}, err
		}
	} else {
		activity.GetLogger(ctx).Warn("terminating past the live-cluster interlock", "instance", in.InstanceID, "by", in.Override.By, "reason", in.Override.Reason)
	}
	return c.terminate(ctx, in.InstanceID)
}

// terminate is TerminateInstances of one instance. TerminateUnused, the recoveries' retirement
// of a failed or never-used server, reaches it past its own interlock (only-copy) rather than
// the live-cluster one: such a server is a live cluster's by definition.
func (c *Cloud) terminate(ctx context.Context, instanceID string) (InstanceStateChange, error) {
	in := InstanceRef{InstanceID: instanceID}
	out, err := c.Clients.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{in.InstanceID}})
	if err != nil {
		return InstanceStateChange{}, cloudError("TerminateInstances", err)
	}
	return firstStateChange(in.InstanceID, out.TerminatingInstances), nil
}

// StopInstanceInput stops one instance.
type StopInstanceInput struct {
	InstanceID string
	// Force stops an instance whose OS does not shut down (a failed file server): no clean
	// shutdown, file system checks follow.
	Force bool
}

// StopInstance stops an instance; stopping a stopped instance succeeds.
func (c *Cloud) StopInstance(ctx context.Context, in StopInstanceInput) (InstanceStateChange, error) {
	if in.InstanceID == "" {
		return InstanceStateChange{}, invalidInput("InstanceID is required")
	}
	out, err := c.Clients.EC2.StopInstances(ctx, &ec2.StopInstancesInput{
		InstanceIds: []string{in.InstanceID},
		Force:       aws.Bool(in.Force),
	})
	if err != nil {
		return InstanceStateChange{}, cloudError("StopInstances", err)
	}
	return firstStateChange(in.InstanceID, out.StoppingInstances), nil
}

// StartInstance starts a stopped instance; starting a running instance succeeds.
func (c *Cloud) StartInstance(ctx context.Context, in InstanceRef) (InstanceStateChange, error) {
	if in.InstanceID == "" {
		return InstanceStateChange{}, invalidInput("InstanceID is required")
	}
	out, err := c.Clients.EC2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{in.InstanceID}})
	if err != nil {
		return InstanceStateChange{}, cloudError("StartInstances", err)
	}
	return firstStateChange(in.InstanceID, out.StartingInstances), nil
}

func firstStateChange(id string, changes []types.InstanceStateChange) InstanceStateChange {
	r := InstanceStateChange{InstanceID: id}
	if len(changes) > 0 {
		ch := changes[0]
		if ch.PreviousState != nil {
			r.Previous = string(ch.PreviousState.Name)
		}
		if ch.CurrentState != nil {
			r.Current = string(ch.CurrentState.Name)
		}
	}
	return r
}

// DescribeFleetInput selects what DescribeFleet reports.
type DescribeFleetInput struct {
	// Tags filters instances and volumes by tag (key → value); empty means everything.
	Tags map[string]string
}

// Fleet is one consistent-enough picture of the instances, volumes and status checks, for
// syncing the inventory.
type Fleet struct {
	Instances []Instance
	Volumes   []Volume
	Health    []InstanceHealth
	// DescribedAt is when the describe began (the worker's clock): the picture is no older.
	// ReconcileFleet orders pictures by it.
	DescribedAt time.Time
}

// DescribeFleet lists instances, volumes and status checks (all pages). It only reads.
func (c *Cloud) DescribeFleet(ctx context.Context, in DescribeFleetInput) (Fleet, error) {
	var filters []types.Filter
	for _, k := range slices.Sorted(maps.Keys(in.Tags)) {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{in.Tags[k]}})
	}
	fleet := Fleet{DescribedAt: time.Now().UTC()}
	ec := c.Clients.EC2
	ip := ec2.NewDescribeInstancesPaginator(ec, &ec2.DescribeInstancesInput{Filters: filters})
	for ip.HasMorePages() {
		page, err := ip.NextPage(ctx)
		if err != nil {
			return Fleet{}, cloudError("DescribeInstances", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				fleet.Instances = append(fleet.Instances, toInstance(i))
			}
		}
		// A large fleet takes many pages: show that the activity is alive (when it is one: a
		// drill's report, and the chaos harness's checks, describe a cluster outside).
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, len(fleet.Instances))
		}
	}
	vp := ec2.NewDescribeVolumesPaginator(ec, &ec2.DescribeVolumesInput{Filters: filters})
	for vp.HasMorePages() {
		page, err := vp.NextPage(ctx)
		if err != nil {
			return Fleet{}, cloudError("DescribeVolumes", err)
		}
		for _, v := range page.Volumes {
			fleet.Volumes = append(fleet.Volumes, toVolume(v))
		}
	}
	if len(fleet.Instances) > 0 {
		ids := make([]string, 0, len(fleet.Instances))
		for _, i := range fleet.Instances {
			ids = append(ids, i.ID)
		}
		health, err := c.describeHealth(ctx, ids)
		if err != nil {
			return Fleet{}, err
		}
		fleet.Health = health
	}
	return fleet, nil
}

// TagResourceInput sets tags on one EC2 resource (instance, volume, snapshot).
type TagResourceInput struct {
	ResourceID string
	Tags       map[string]string
}

// TagResource sets the tags with CreateTags, which overwrites a key's value: setting what is
// already set changes nothing, so retries are safe.
func (c *Cloud) TagResource(ctx context.Context, in TagResourceInput) error {
	if in.ResourceID == "" || len(in.Tags) == 0 {
		return invalidInput("ResourceID and Tags are required")
	}
	_, err := c.Clients.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{in.ResourceID}, Tags: ec2Tags(in.Tags)})
	return cloudError("CreateTags", err)
}

// InstanceStatus reports the status checks of one instance, with the time a failing check
// started failing.
func (c *Cloud) InstanceStatus(ctx context.Context, in InstanceRef) (InstanceHealth, error) {
	if in.InstanceID == "" {
		return InstanceHealth{}, invalidInput("InstanceID is required")
	}
	health, err := c.describeHealth(ctx, []string{in.InstanceID})
	if err != nil {
		return InstanceHealth{}, err
	}
	if len(health) == 0 {
		return InstanceHealth{}, temporal.NewNonRetryableApplicationError(
			"no status for instance "+in.InstanceID, ErrInstanceNotFound, nil)
	}
	return health[0], nil
}

func (c *Cloud) describeHealth(ctx context.Context, ids []string) ([]InstanceHealth, error) {
	var out []InstanceHealth
	// DescribeInstanceStatus takes at most 100 ids per call.
	for start := 0; start < len(ids); start += 100 {
		end := min(start+100, len(ids))
		p := ec2.NewDescribeInstanceStatusPaginator(c.Clients.EC2, &ec2.DescribeInstanceStatusInput{
			InstanceIds:         ids[start:end],
			IncludeAllInstances: aws.Bool(true),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, cloudError("DescribeInstanceStatus", err)
			}
			for _, s := range page.InstanceStatuses {
				out = append(out, toHealth(s))
			}
		}
	}
	return out, nil
}

// WaitInstanceInput waits for an instance state.
type WaitInstanceInput struct {
	InstanceID   string
	PollInterval time.Duration // 0: DefaultPollInterval
	// Timeout bounds the wait; 0 waits until the activity's own deadline.
	Timeout time.Duration
}

// WaitInstanceRunning waits, with the SDK's waiter, until the instance runs; it heartbeats
// each poll and fails non-retryably if the instance terminates or stops instead.
func (c *Cloud) WaitInstanceRunning(ctx context.Context, in WaitInstanceInput) (Instance, error) {
	return c.waitInstance(ctx, in, "running")
}

// WaitInstanceStopped waits until the instance is stopped.
func (c *Cloud) WaitInstanceStopped(ctx context.Context, in WaitInstanceInput) (Instance, error) {
	return c.waitInstance(ctx, in, "stopped")
}

func (c *Cloud) waitInstance(ctx context.Context, in WaitInstanceInput, want string) (Instance, error) {
	if in.InstanceID == "" {
		return Instance{}, invalidInput("InstanceID is required")
	}
	polls := pollResource(ctx, in.InstanceID, in.PollInterval, in.Timeout, func(out *ec2.DescribeInstancesOutput) string {
		if len(out.Reservations) > 0 && len(out.Reservations[0].Instances) > 0 {
			return string(out.Reservations[0].Instances[0].State.Name)
		}
		return ""
	})
	params := &ec2.DescribeInstancesInput{InstanceIds: []string{in.InstanceID}}
	failed := "instance " + in.InstanceID + " cannot reach " + want
	var out *ec2.DescribeInstancesOutput
	var err error
	switch want {
	case "running":
		out, err = ec2.NewInstanceRunningWaiter(c.Clients.EC2, func(o *ec2.InstanceRunningWaiterOptions) {
			o.MinDelay, o.MaxDelay = polls.interval, polls.interval
			o.Retryable = heartbeatRetryable(o.Retryable, polls.progress, failed)
		}).WaitForOutput(ctx, params, polls.maxWait)
	case "stopped":
		out, err = ec2.NewInstanceStoppedWaiter(c.Clients.EC2, func(o *ec2.InstanceStoppedWaiterOptions) {
			o.MinDelay, o.MaxDelay = polls.interval, polls.interval
			o.Retryable = heartbeatRetryable(o.Retryable, polls.progress, failed)
		}).WaitForOutput(ctx, params, polls.maxWait)
	}
	if err != nil {
		return Instance{}, waitError("wait for instance "+want, err)
	}
	return toInstance(out.Reservations[0].Instances[0]), nil
}
