package activities

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// Cloud holds the activities that reach EC2. Register it with a worker as a struct
// (w.RegisterActivity(cloud)): every exported method is an activity named after the method.
// The same code talks to AWS in production and to cloudsim (or moto) in dev and tests.
type Cloud struct {
	Clients *Clients
	// Clusters tells a cluster's state for TerminateInstance's live-cluster interlock (the
	// inventory: InventoryClusters); nil refuses to terminate any instance of a cluster.
	Clusters ClusterStates
	// ConsistencyWindow is how long a retried CreateSnapshot or CopySnapshot keeps looking
	// for the snapshot its previous attempt may have taken before it takes one: DescribeSnapshots
	// is eventually consistent, and a snapshot just taken may not show in a tag filter yet.
	// 0 means DefaultConsistencyWindow.
	ConsistencyWindow time.Duration
}

// DefaultConsistencyWindow bounds the look for a previous attempt's snapshot: EC2's listings
// catch up within seconds.
const DefaultConsistencyWindow = 20 * time.Second

// NewCloud returns the cloud activities over clients.
func NewCloud(clients *Clients) *Cloud { return &Cloud{Clients: clients} }

// Tags Anyops puts on what it creates.
const (
	TagName           = "Name"
	TagWorkflow       = anyops.TagWorkflow
	TagScope          = anyops.TagScope
	TagStep           = anyops.TagStep
	TagIdempotencyKey = "anyops:idempotency-key" // on snapshots: the API has no ClientToken
	TagSourceVolume   = "anyops:source-volume"   // on snapshots and their copies: the volume they preserve
	TagTakenAt        = "anyops:taken-at"        // on copies: when the source snapshot was taken (RFC 3339)
)

// DefaultPollInterval is how often the wait activities poll when the input does not say;
// cloudsim runs pass a shorter one scaled by its speed factor.
const DefaultPollInterval = 15 * time.Second

// ---------------------------------------------------------------------------------------
// Types shared by inputs and outputs.

// Instance is what the activities report about an EC2 instance.
type Instance struct {
	ID           string
	Name         string
	State        string // pending, running, stopping, stopped, shutting-down, terminated
	Zone         string
	InstanceType string
	ImageID      string
	PrivateIP    string
	PublicIP     string
	// VPCID is the instance's VPC: the one a private hosted zone must be associated with for
	// the instance to resolve its names.
	VPCID      string
	LaunchTime time.Time
	Tags       map[string]string
}

// Attachment is a volume's attachment to an instance.
type Attachment struct {
	VolumeID   string
	InstanceID string
	Device     string
	State      string // attaching, attached, detaching, detached
}

// Volume is what the activities report about an EBS volume.
type Volume struct {
	ID          string
	Name        string
	State       string // creating, available, in-use, deleting, deleted, error
	Zone        string
	SizeGiB     int32
	VolumeType  string
	Iops        int32
	Throughput  int32 // MiB/s, gp3
	SnapshotID  string
	CreateTime  time.Time
	Attachments []Attachment
	Tags        map[string]string
}

// Snapshot is what the activities report about an EBS snapshot.
type Snapshot struct {
	ID           string
	Region       string
	VolumeID     string
	State        string // pending, completed, error
	Progress     int    // percent, 0..100
	StateMessage string
	Description  string
	SizeGiB      int32
	StartTime    time.Time
	// CompletedAt is when it completed; FullBytes every block written on its volume when it
	// was taken (EC2's FullSnapshotSizeInBytes), known once completed.
	CompletedAt time.Time
	FullBytes   int64
	Tags        map[string]string
}

// TakenAt is the moment the snapshot's data is from: for a copy, when its source was taken
// (the taken-at tag CopySnapshot sets), else its own start time.
func (s Snapshot) TakenAt() time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s.Tags[TagTakenAt]); err == nil {
		return t
	}
	return s.StartTime
}

// InstanceHealth is the status check view of one instance.
type InstanceHealth struct {
	InstanceID     string
	Zone           string
	State          string
	SystemStatus   string // ok, impaired, insufficient-data, not-applicable, initializing
	InstanceStatus string
	// ImpairedSince is the earliest time a failed system or instance check started failing.
	ImpairedSince *time.Time
	// Events are scheduled events (code: description), e.g. system-retirement.
	Events []string
}

// Impaired reports whether a system or instance status check fails.
func (h InstanceHealth) Impaired() bool {
	return h.SystemStatus == "impaired" || h.InstanceStatus == "impaired"
}

// InstanceRef names one instance.
type InstanceRef struct {
	InstanceID string
}

// InstanceStateChange is the result of start, stop and terminate.
type InstanceStateChange struct {
	InstanceID string
	Previous   string
	Current    string
}

// ---------------------------------------------------------------------------------------
// Idempotency.

// clientToken derives the idempotency token of a call from the workflow id, the operation's
// scope and the step, so that every retry of the activity, and a replay of the workflow, sends
// the same token, while a later operation under the same business key (a second failover of
// one server) sends another. It is a hex SHA-256 truncated to the 64 characters EC2 accepts.
func clientToken(workflowID, scope, step string) string {
	sum := sha256.Sum256([]byte(workflowID + "\x00" + scope + "\x00" + step))
	return hex.EncodeToString(sum[:])[:64]
}

// idempotency is what names one step of one operation: the token and the provenance tags.
type idempotency struct {
	workflowID, scope, step, token string
}

// stepToken returns the idempotency of this activity's step, or an InvalidInput error when
// the input names no step. An empty scope is the run id of the calling workflow.
func stepToken(ctx context.Context, scope, step string) (idempotency, error) {
	if strings.TrimSpace(step) == "" {
		return idempotency{}, invalidInput("Step is required: with the workflow id and scope it makes the idempotency token")
	}
	wf := activity.GetInfo(ctx).WorkflowExecution
	if scope == "" {
		scope = wf.RunID
	}
	return idempotency{workflowID: wf.ID, scope: scope, step: step, token: clientToken(wf.ID, scope, step)}, nil
}

func tagSpec(rt types.ResourceType, tags map[string]string) []types.TagSpecification {
	if len(tags) == 0 {
		return nil
	}
	return []types.TagSpecification{{ResourceType: rt, Tags: ec2Tags(tags)}}
}

// ec2Tags turns a tag map into EC2's list, sorted by key.
func ec2Tags(tags map[string]string) []types.Tag {
	var out []types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// ownTags merges the caller's tags with Name and the anyops provenance tags.
func ownTags(extra map[string]string, name string, id idempotency) map[string]string {
	tags := map[string]string{}
	maps.Copy(tags, extra)
	if name != "" {
		tags[TagName] = name
	}
	tags[TagWorkflow] = id.workflowID
	tags[TagScope] = id.scope
	tags[TagStep] = id.step
	return tags
}

// ---------------------------------------------------------------------------------------
// Instances.

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

// WaitProgress is the heartbeat of the wait activities.
type WaitProgress struct {
	ResourceID string
	State      string
	Polls      int
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
	interval, maxWait := waitBounds(ctx, in.PollInterval, in.Timeout)
	params := &ec2.DescribeInstancesInput{InstanceIds: []string{in.InstanceID}}
	polls := 0
	progress := func(out *ec2.DescribeInstancesOutput) {
		polls++
		p := WaitProgress{ResourceID: in.InstanceID, Polls: polls}
		if out != nil && len(out.Reservations) > 0 && len(out.Reservations[0].Instances) > 0 {
			p.State = string(out.Reservations[0].Instances[0].State.Name)
		}
		activity.RecordHeartbeat(ctx, p)
	}
	var out *ec2.DescribeInstancesOutput
	var err error
	switch want {
	case "running":
		out, err = ec2.NewInstanceRunningWaiter(c.Clients.EC2, func(o *ec2.InstanceRunningWaiterOptions) {
			o.MinDelay, o.MaxDelay = interval, interval
			o.Retryable = heartbeatRetryable(o.Retryable, progress, "instance "+in.InstanceID+" cannot reach running")
		}).WaitForOutput(ctx, params, maxWait)
	case "stopped":
		out, err = ec2.NewInstanceStoppedWaiter(c.Clients.EC2, func(o *ec2.InstanceStoppedWaiterOptions) {
			o.MinDelay, o.MaxDelay = interval, interval
			o.Retryable = heartbeatRetryable(o.Retryable, progress, "instance "+in.InstanceID+" cannot reach stopped")
		}).WaitForOutput(ctx, params, maxWait)
	}
	if err != nil {
		return Instance{}, waitError("wait for instance "+want, err)
	}
	return toInstance(out.Reservations[0].Instances[0]), nil
}

// ---------------------------------------------------------------------------------------
// Volumes.

// CreateVolumeInput creates an empty volume.
type CreateVolumeInput struct {
	Step string // with the workflow id and Scope, the ClientToken
	// Scope names the operation the step belongs to; with the workflow id and Step it makes
	// the idempotency token. Empty: the calling workflow's run, so a later run under the same
	// workflow id (another incident) makes new resources. A workflow whose operation spans
	// runs (continue-as-new, a retried workflow) passes workflow.GetInfo(ctx).FirstRunID; one
	// whose later runs must find what the first made (DemoFleet) passes a fixed scope.
	Scope      string
	Name       string
	Zone       string
	SizeGiB    int32
	VolumeType string // gp3 when empty
	Iops       int32  // 0: the type's default
	Tags       map[string]string
}

// CreateVolume creates a volume with a ClientToken: retries create one volume.
func (c *Cloud) CreateVolume(ctx context.Context, in CreateVolumeInput) (Volume, error) {
	if in.Zone == "" || in.SizeGiB <= 0 {
		return Volume{}, invalidInput("Zone and a positive SizeGiB are required")
	}
	return c.createVolume(ctx, in.Scope, in.Step, in.Name, in.Tags, &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String(in.Zone),
		Size:             aws.Int32(in.SizeGiB),
		VolumeType:       volumeType(in.VolumeType),
		Iops:             positive(in.Iops),
	})
}

// CreateVolumeFromSnapshotInput restores a snapshot into a new volume, possibly in another
// zone than the snapshot's volume.
type CreateVolumeFromSnapshotInput struct {
	Step string
	// Scope names the operation the step belongs to; with the workflow id and Step it makes
	// the idempotency token. Empty: the calling workflow's run, so a later run under the same
	// workflow id (another incident) makes new resources. A workflow whose operation spans
	// runs (continue-as-new, a retried workflow) passes workflow.GetInfo(ctx).FirstRunID; one
	// whose later runs must find what the first made (DemoFleet) passes a fixed scope.
	Scope      string
	Name       string
	SnapshotID string
	Zone       string
	SizeGiB    int32 // 0: the snapshot's size
	VolumeType string
	Iops       int32
	Throughput int32 // MiB/s, gp3 only; 0: its default
	// InitRateMiBps is EBS's provisioned rate for volume initialization (100–300 MiB/s): the
	// snapshot's blocks load in the background at that rate instead of on first read. 0: not.
	InitRateMiBps int32
	Tags          map[string]string
}

// CreateVolumeFromSnapshot creates a volume from a snapshot with a ClientToken.
func (c *Cloud) CreateVolumeFromSnapshot(ctx context.Context, in CreateVolumeFromSnapshotInput) (Volume, error) {
	if in.Zone == "" || in.SnapshotID == "" {
		return Volume{}, invalidInput("Zone and SnapshotID are required")
	}
	return c.createVolume(ctx, in.Scope, in.Step, in.Name, in.Tags, &ec2.CreateVolumeInput{
		AvailabilityZone:         aws.String(in.Zone),
		SnapshotId:               aws.String(in.SnapshotID),
		Size:                     positive(in.SizeGiB),
		VolumeType:               volumeType(in.VolumeType),
		Iops:                     positive(in.Iops),
		Throughput:               positive(in.Throughput),
		VolumeInitializationRate: positive(in.InitRateMiBps),
	})
}

func (c *Cloud) createVolume(ctx context.Context, scope, step, name string, tags map[string]string, req *ec2.CreateVolumeInput) (Volume, error) {
	id, err := stepToken(ctx, scope, step)
	if err != nil {
		return Volume{}, err
	}
	req.ClientToken = aws.String(id.token)
	req.TagSpecifications = tagSpec(types.ResourceTypeVolume, ownTags(tags, name, id))
	out, err := c.Clients.EC2.CreateVolume(ctx, req)
	if err != nil {
		return Volume{}, cloudError("CreateVolume", err)
	}
	return Volume{
		ID:         aws.ToString(out.VolumeId),
		Name:       name,
		State:      string(out.State),
		Zone:       aws.ToString(out.AvailabilityZone),
		SizeGiB:    aws.ToInt32(out.Size),
		VolumeType: string(out.VolumeType),
		SnapshotID: aws.ToString(out.SnapshotId),
		CreateTime: aws.ToTime(out.CreateTime),
		Tags:       tagMap(out.Tags),
	}, nil
}

func volumeType(t string) types.VolumeType {
	if t == "" {
		return types.VolumeTypeGp3
	}
	return types.VolumeType(t)
}

func positive(n int32) *int32 {
	if n <= 0 {
		return nil
	}
	return aws.Int32(n)
}

// describeVolume returns one volume, or the mapped NotFound error.
func (c *Cloud) describeVolume(ctx context.Context, id string) (Volume, error) {
	out, err := c.Clients.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil {
		return Volume{}, cloudError("DescribeVolumes", err)
	}
	if len(out.Volumes) == 0 {
		return Volume{}, temporal.NewNonRetryableApplicationError("volume "+id+" not found", ErrVolumeNotFound, nil)
	}
	return toVolume(out.Volumes[0]), nil
}

// AttachVolumeInput attaches a volume to an instance at a device.
type AttachVolumeInput struct {
	VolumeID   string
	InstanceID string
	Device     string // e.g. /dev/sdf
}

// AttachVolume attaches a volume. EC2 has no token for it, so it first looks at the current
// attachment: already attached (or attaching) to the same instance and device is success;
// attached anywhere else is a non-retryable VolumeAttachedElsewhere error, because moving a
// volume under a running server is a decision for a workflow, not for a retry.
func (c *Cloud) AttachVolume(ctx context.Context, in AttachVolumeInput) (Attachment, error) {
	if in.VolumeID == "" || in.InstanceID == "" || in.Device == "" {
		return Attachment{}, invalidInput("VolumeID, InstanceID and Device are required")
	}
	vol, err := c.describeVolume(ctx, in.VolumeID)
	if err != nil {
		return Attachment{}, err
	}
	for _, a := range vol.Attachments {
		switch {
		case a.State == string(types.VolumeAttachmentStateDetached):
			continue
		case a.InstanceID == in.InstanceID && a.Device == in.Device && a.State != string(types.VolumeAttachmentStateDetaching):
			return a, nil
		case a.State == string(types.VolumeAttachmentStateDetaching):
			return Attachment{}, temporal.NewApplicationError(
				fmt.Sprintf("volume %s is still detaching from %s", in.VolumeID, a.InstanceID), ErrIncorrectState)
		default:
			return Attachment{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("volume %s is %s to %s at %s, not to %s at %s",
					in.VolumeID, a.State, a.InstanceID, a.Device, in.InstanceID, in.Device),
				ErrVolumeAttachedElsewhere, nil, a)
		}
	}
	out, err := c.Clients.EC2.AttachVolume(ctx, &ec2.AttachVolumeInput{
		VolumeId:   aws.String(in.VolumeID),
		InstanceId: aws.String(in.InstanceID),
		Device:     aws.String(in.Device),
	})
	if err != nil {
		return Attachment{}, cloudError("AttachVolume", err)
	}
	return Attachment{
		VolumeID:   aws.ToString(out.VolumeId),
		InstanceID: aws.ToString(out.InstanceId),
		Device:     aws.ToString(out.Device),
		State:      string(out.State),
	}, nil
}

// DetachVolumeInput detaches a volume.
type DetachVolumeInput struct {
	VolumeID string
	// InstanceID, when set, detaches only from that instance: attached elsewhere is an error.
	InstanceID string
	// Force detaches from an instance that does not respond (failed hardware); data not yet
	// flushed is lost, so file system checks follow.
	Force bool
}

// DetachVolume detaches a volume; a volume already detached (or detaching) is success.
func (c *Cloud) DetachVolume(ctx context.Context, in DetachVolumeInput) (Attachment, error) {
	if in.VolumeID == "" {
		return Attachment{}, invalidInput("VolumeID is required")
	}
	vol, err := c.describeVolume(ctx, in.VolumeID)
	if err != nil {
		return Attachment{}, err
	}
	var current *Attachment
	for i, a := range vol.Attachments {
		if a.State != string(types.VolumeAttachmentStateDetached) {
			current = &vol.Attachments[i]
		}
	}
	if current == nil {
		return Attachment{VolumeID: in.VolumeID, State: string(types.VolumeAttachmentStateDetached)}, nil
	}
	if in.InstanceID != "" && current.InstanceID != in.InstanceID {
		return Attachment{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("volume %s is attached to %s, not to %s", in.VolumeID, current.InstanceID, in.InstanceID),
			ErrVolumeAttachedElsewhere, nil, *current)
	}
	if current.State == string(types.VolumeAttachmentStateDetaching) && !in.Force {
		return *current, nil
	}
	out, err := c.Clients.EC2.DetachVolume(ctx, &ec2.DetachVolumeInput{
		VolumeId:   aws.String(in.VolumeID),
		InstanceId: aws.String(current.InstanceID),
		Force:      aws.Bool(in.Force),
	})
	if err != nil {
		return Attachment{}, cloudError("DetachVolume", err)
	}
	return Attachment{
		VolumeID:   aws.ToString(out.VolumeId),
		InstanceID: aws.ToString(out.InstanceId),
		Device:     aws.ToString(out.Device),
		State:      string(out.State),
	}, nil
}

// Override lets an operator break a safety interlock. Workflows only fill it from an
// audited update whose validator demanded a reason.
type Override struct {
	By     string
	Reason string
	// Interlock is the interlock it passes, where an activity checks more than one.
	Interlock anyops.Interlock
}

// VerifiedCopy names the copy of a volume that lets DeleteVolume delete it: a snapshot, or a
// DRBD replica on another instance. Exactly one of the two is named.
type VerifiedCopy struct {
	// SnapshotID is a snapshot of the volume, or a copy of one (tagged anyops:source-volume).
	// It must be completed and taken at or after WritesStoppedAt.
	SnapshotID string
	// Region holds the snapshot; "" for the home region (a copy lives in its destination).
	Region string
	// WritesStoppedAt is when the volume stopped taking writes, in the cloud's clock: e.g. the
	// EndedAt of the Umount (or fence) that stopped them. A snapshot taken before it misses
	// what was written since.
	WritesStoppedAt time.Time

	// ReplicaInstanceID and DRBDResource name a DRBD replica: the resource the volume backs
	// (its anyops:drbd-resource tag), on another instance whose `drbdadm status` shows it
	// UpToDate.
	ReplicaInstanceID string
	DRBDResource      string
}

// DeleteVolumeInput deletes a volume.
type DeleteVolumeInput struct {
	VolumeID string
	// Copy names the copy that allows the deletion; DeleteVolume verifies it.
	Copy *VerifiedCopy
	// Override deletes without a verified copy; Reason must say why.
	Override *Override
}

// DeleteVolumeOutput says what DeleteVolume did.
type DeleteVolumeOutput struct {
	Deleted bool // false when the volume was already gone
	// VerifiedCopy is the copy that allowed the deletion: the snapshot id, or
	// "<instance>/<resource>" of the replica ("" when overridden).
	VerifiedCopy string
	Overridden   bool
}

// DeleteVolume deletes a volume, but only when the copy the input names is verified: a
// completed snapshot of this volume taken after its writes stopped, or an UpToDate DRBD replica
// of it on another instance. Anything else — no copy named, a snapshot that is older, pending,
// of another volume or missing, a replica that is not UpToDate — is the non-retryable
// NoVerifiedCopy error, unless the input carries an Override with a reason (logged; the
// workflow that grants it records the audit event). A volume already gone is success, so
// retries are safe.
func (c *Cloud) DeleteVolume(ctx context.Context, in DeleteVolumeInput) (DeleteVolumeOutput, error) {
	if in.VolumeID == "" {
		return DeleteVolumeOutput{}, invalidInput("VolumeID is required")
	}
	if in.Override != nil && strings.TrimSpace(in.Override.Reason) == "" {
		return DeleteVolumeOutput{}, invalidInput("an Override needs a Reason")
	}
	if err := in.Copy.check(); err != nil {
		return DeleteVolumeOutput{}, err
	}
	vol, err := c.describeVolume(ctx, in.VolumeID)
	if err != nil {
		if isType(err, ErrVolumeNotFound) {
			return DeleteVolumeOutput{}, nil
		}
		return DeleteVolumeOutput{}, err
	}
	res := DeleteVolumeOutput{}
	refusal := "no copy is named"
	if in.Copy != nil {
		copyName, why, err := c.verifyCopy(ctx, vol, *in.Copy)
		if err != nil {
			return DeleteVolumeOutput{}, err
		}
		res.VerifiedCopy, refusal = copyName, why
	}
	switch {
	case res.VerifiedCopy != "":
	case in.Override != nil:
		res.Overridden = true
		activity.GetLogger(ctx).Warn("deleting volume without a verified copy: interlock overridden",
			"volume", in.VolumeID, "by", in.Override.By, "reason", in.Override.Reason, "refused because", refusal)
	default:
		return DeleteVolumeOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("volume %s has no verified copy (%s); refusing to delete it without an override", in.VolumeID, refusal),
			ErrNoVerifiedCopy, nil)
	}
	if _, err := c.Clients.EC2.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(in.VolumeID)}); err != nil {
		if awsCode(err) == "InvalidVolume.NotFound" {
			return res, nil
		}
		return DeleteVolumeOutput{}, cloudError("DeleteVolume", err)
	}
	res.Deleted = true
	return res, nil
}

func (v *VerifiedCopy) check() error {
	switch {
	case v == nil:
		return nil
	case (v.SnapshotID == "") == (v.ReplicaInstanceID == "" && v.DRBDResource == ""):
		return invalidInput("Copy names either a SnapshotID or a ReplicaInstanceID with a DRBDResource")
	case v.SnapshotID != "" && v.WritesStoppedAt.IsZero():
		return invalidInput("a snapshot copy needs WritesStoppedAt: when the volume stopped taking writes")
	case v.SnapshotID == "" && (v.ReplicaInstanceID == "" || v.DRBDResource == ""):
		return invalidInput("a replica copy needs both ReplicaInstanceID and DRBDResource")
	}
	return nil
}

// verifyCopy checks the named copy of vol. It returns the copy's name when verified, else why
// not; an error only when it could not look (those are retryable where a retry can help).
func (c *Cloud) verifyCopy(ctx context.Context, vol Volume, cp VerifiedCopy) (name, why string, err error) {
	if cp.SnapshotID != "" {
		region := cmp.Or(cp.Region, c.Clients.Region)
		snap, err := c.describeSnapshot(ctx, region, cp.SnapshotID)
		switch {
		case isType(err, ErrSnapshotNotFound):
			return "", fmt.Sprintf("snapshot %s does not exist in %s", cp.SnapshotID, region), nil
		case err != nil:
			return "", "", err
		case snap.VolumeID != vol.ID && snap.Tags[TagSourceVolume] != vol.ID:
			return "", fmt.Sprintf("snapshot %s is of %s, not of this volume", snap.ID, cmp.Or(snap.Tags[TagSourceVolume], snap.VolumeID)), nil
		case snap.State != string(types.SnapshotStateCompleted):
			return "", fmt.Sprintf("snapshot %s is %s, not completed", snap.ID, snap.State), nil
		case snap.TakenAt().Before(cp.WritesStoppedAt):
			return "", fmt.Sprintf("snapshot %s was taken at %s, before writes stopped at %s",
				snap.ID, snap.TakenAt().UTC().Format(time.RFC3339), cp.WritesStoppedAt.UTC().Format(time.RFC3339)), nil
		}
		return snap.ID, "", nil
	}
	if vol.Tags[anyops.TagDRBDResource] != cp.DRBDResource {
		return "", fmt.Sprintf("the volume does not back DRBD resource %s", cp.DRBDResource), nil
	}
	if a, ok := attachedTo(vol); ok && a.InstanceID == cp.ReplicaInstanceID {
		return "", fmt.Sprintf("%s holds the volume itself, not a replica of it", cp.ReplicaInstanceID), nil
	}
	st, err := NewHosts(c.Clients).DRBDStatus(ctx, DRBDStatusInput{InstanceID: cp.ReplicaInstanceID, Resource: cp.DRBDResource})
	if err != nil {
		return "", "", err
	}
	for _, r := range st.Resources {
		if r.Name != cp.DRBDResource {
			continue
		}
		for _, v := range r.Volumes {
			if v.Disk != "UpToDate" {
				return "", fmt.Sprintf("the replica of %s on %s is %s, not UpToDate", cp.DRBDResource, cp.ReplicaInstanceID, v.Disk), nil
			}
		}
		if len(r.Volumes) > 0 {
			return cp.ReplicaInstanceID + "/" + cp.DRBDResource, "", nil
		}
	}
	return "", fmt.Sprintf("%s has no replica of %s", cp.ReplicaInstanceID, cp.DRBDResource), nil
}

// WaitVolumeInput waits for a volume state.
type WaitVolumeInput struct {
	VolumeID     string
	Region       string // "" for the home region
	PollInterval time.Duration
	Timeout      time.Duration
}

// WaitVolumeAvailable waits, with the SDK's waiter, until the volume is available (created,
// or detached); it heartbeats each poll and fails non-retryably if the volume is deleted.
func (c *Cloud) WaitVolumeAvailable(ctx context.Context, in WaitVolumeInput) (Volume, error) {
	return c.waitVolume(ctx, in, "available")
}

// WaitVolumeAttached waits until the volume is in-use and its attachment is attached: EC2
// marks a volume in-use as soon as the attach starts, before the instance sees the device.
func (c *Cloud) WaitVolumeAttached(ctx context.Context, in WaitVolumeInput) (Volume, error) {
	return c.waitVolume(ctx, in, "in-use")
}

func (c *Cloud) waitVolume(ctx context.Context, in WaitVolumeInput, want string) (Volume, error) {
	if in.VolumeID == "" {
		return Volume{}, invalidInput("VolumeID is required")
	}
	interval, maxWait := waitBounds(ctx, in.PollInterval, in.Timeout)
	params := &ec2.DescribeVolumesInput{VolumeIds: []string{in.VolumeID}}
	polls := 0
	progress := func(out *ec2.DescribeVolumesOutput) {
		polls++
		p := WaitProgress{ResourceID: in.VolumeID, Polls: polls}
		if out != nil && len(out.Volumes) > 0 {
			p.State = string(out.Volumes[0].State)
		}
		activity.RecordHeartbeat(ctx, p)
	}
	client := c.Clients.EC2For(in.Region)
	failed := "volume " + in.VolumeID + " cannot become " + want
	var out *ec2.DescribeVolumesOutput
	var err error
	switch want {
	case "available":
		out, err = ec2.NewVolumeAvailableWaiter(client, func(o *ec2.VolumeAvailableWaiterOptions) {
			o.MinDelay, o.MaxDelay = interval, interval
			o.Retryable = heartbeatRetryable(o.Retryable, progress, failed)
		}).WaitForOutput(ctx, params, maxWait)
	case "in-use":
		out, err = ec2.NewVolumeInUseWaiter(client, func(o *ec2.VolumeInUseWaiterOptions) {
			o.MinDelay, o.MaxDelay = interval, interval
			inUse := heartbeatRetryable(o.Retryable, progress, failed)
			o.Retryable = func(ctx context.Context, in *ec2.DescribeVolumesInput, out *ec2.DescribeVolumesOutput, err error) (bool, error) {
				retry, rerr := inUse(ctx, in, out, err)
				if retry || rerr != nil {
					return retry, rerr
				}
				for _, a := range out.Volumes[0].Attachments {
					if a.State != types.VolumeAttachmentStateAttached {
						return true, nil
					}
				}
				return false, nil
			}
		}).WaitForOutput(ctx, params, maxWait)
	}
	if err != nil {
		return Volume{}, waitError("wait for volume "+want, err)
	}
	return toVolume(out.Volumes[0]), nil
}

// ---------------------------------------------------------------------------------------
// Snapshots.

// CreateSnapshotInput snapshots one volume.
type CreateSnapshotInput struct {
	Step string // with the workflow id and Scope, the idempotency key
	// Scope names the operation the step belongs to, as in RunInstanceInput.
	Scope       string
	VolumeID    string
	Name        string
	Description string
	Tags        map[string]string
}

// CreateSnapshot snapshots a volume. CreateSnapshot takes no ClientToken, so the snapshot
// is tagged with an idempotency key from the workflow id, scope and step, and an earlier
// attempt's snapshot with that key (unless it failed) is returned instead of taking another.
// A retry looks for it for up to the consistency window (see findPrevious) before it takes one.
func (c *Cloud) CreateSnapshot(ctx context.Context, in CreateSnapshotInput) (Snapshot, error) {
	id, err := stepToken(ctx, in.Scope, in.Step)
	if err != nil {
		return Snapshot{}, err
	}
	if in.VolumeID == "" {
		return Snapshot{}, invalidInput("VolumeID is required")
	}
	client := c.Clients.EC2
	if prior, ok, err := c.findPrevious(ctx, client, c.Clients.Region, id); err != nil || ok {
		return prior, err
	}
	tags := ownTags(in.Tags, in.Name, id)
	tags[TagIdempotencyKey] = id.token
	tags[TagSourceVolume] = in.VolumeID
	activity.RecordHeartbeat(ctx, SnapshotRequest{Step: id.step, Sent: true})
	out, err := client.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{
		VolumeId:          aws.String(in.VolumeID),
		Description:       optional(in.Description),
		TagSpecifications: tagSpec(types.ResourceTypeSnapshot, tags),
	})
	if err != nil {
		return Snapshot{}, cloudError("CreateSnapshot", err)
	}
	return Snapshot{
		ID:           aws.ToString(out.SnapshotId),
		Region:       c.Clients.Region,
		VolumeID:     aws.ToString(out.VolumeId),
		State:        string(out.State),
		Progress:     parseProgress(aws.ToString(out.Progress)),
		StateMessage: aws.ToString(out.StateMessage),
		Description:  aws.ToString(out.Description),
		SizeGiB:      aws.ToInt32(out.VolumeSize),
		StartTime:    aws.ToTime(out.StartTime),
		Tags:         tagMap(out.Tags),
	}, nil
}

// SnapshotRequest is the heartbeat CreateSnapshot and CopySnapshot record just before they ask
// EC2 for the snapshot, and while a retry looks for it: the next attempt then knows the
// snapshot may exist though no listing shows it yet.
type SnapshotRequest struct {
	Step  string
	Sent  bool
	Looks int
}

// findPrevious looks for the snapshot an earlier attempt of this step took. DescribeSnapshots
// is eventually consistent: a snapshot taken just before a lost reply may not show in a tag
// filter for some seconds, and taking another then would preserve the volume twice. So a retry
// (attempt > 1, or a heartbeat saying the request was sent) keeps looking, with a backoff and a
// heartbeat per look, for up to ConsistencyWindow; a first attempt looks once.
func (c *Cloud) findPrevious(ctx context.Context, client *ec2.Client, region string, id idempotency) (Snapshot, bool, error) {
	retry := activity.GetInfo(ctx).Attempt > 1
	if activity.HasHeartbeatDetails(ctx) {
		var prev SnapshotRequest
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil && prev.Step == id.step && prev.Sent {
			retry = true
		}
	}
	window := c.ConsistencyWindow
	if window <= 0 {
		window = DefaultConsistencyWindow
	}
	deadline := time.Now().Add(window)
	delay := 100 * time.Millisecond
	for look := 1; ; look++ {
		prior, ok, err := findByKey(ctx, client, region, id.token)
		if err != nil || ok || !retry || !time.Now().Before(deadline) {
			return prior, ok, err
		}
		activity.RecordHeartbeat(ctx, SnapshotRequest{Step: id.step, Sent: true, Looks: look})
		select {
		case <-ctx.Done():
			return Snapshot{}, false, ctx.Err()
		case <-time.After(min(delay, time.Until(deadline))):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// findByKey looks for a snapshot an earlier attempt made, by its idempotency-key tag. Failed
// snapshots do not count: a retry should take a new one.
func findByKey(ctx context.Context, client *ec2.Client, region, key string) (Snapshot, bool, error) {
	out, err := client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []types.Filter{{Name: aws.String("tag:" + TagIdempotencyKey), Values: []string{key}}},
	})
	if err != nil {
		return Snapshot{}, false, cloudError("DescribeSnapshots", err)
	}
	for _, s := range out.Snapshots {
		if s.State != types.SnapshotStateError {
			return toSnapshot(s, region), true, nil
		}
	}
	return Snapshot{}, false, nil
}

// CopySnapshotInput copies a snapshot into another region.
type CopySnapshotInput struct {
	Step string
	// Scope names the operation the step belongs to, as in RunInstanceInput.
	Scope             string
	SourceSnapshotID  string
	SourceRegion      string // "" for the home region
	DestinationRegion string // "" for the home region
	Name              string
	Description       string
	Tags              map[string]string
}

// CopySnapshot copies a snapshot, with the destination region's client. CopySnapshot has no
// ClientToken either, so the copy carries the idempotency-key tag and an earlier attempt's
// copy is returned. The copy is tagged with the source volume, so it counts as a verified
// copy for DeleteVolume once completed.
func (c *Cloud) CopySnapshot(ctx context.Context, in CopySnapshotInput) (Snapshot, error) {
	id, err := stepToken(ctx, in.Scope, in.Step)
	if err != nil {
		return Snapshot{}, err
	}
	if in.SourceSnapshotID == "" {
		return Snapshot{}, invalidInput("SourceSnapshotID is required")
	}
	srcRegion := cmp.Or(in.SourceRegion, c.Clients.Region)
	dstRegion := cmp.Or(in.DestinationRegion, c.Clients.Region)
	dst := c.Clients.EC2For(dstRegion)
	if prior, ok, err := c.findPrevious(ctx, dst, dstRegion, id); err != nil || ok {
		return prior, err
	}
	src, err := c.describeSnapshot(ctx, srcRegion, in.SourceSnapshotID)
	if err != nil {
		return Snapshot{}, err
	}
	tags := ownTags(in.Tags, in.Name, id)
	tags[TagIdempotencyKey] = id.token
	if v := src.VolumeID; v != "" {
		tags[TagSourceVolume] = v
	}
	if v := src.Tags[TagSourceVolume]; v != "" {
		tags[TagSourceVolume] = v
	}
	// The copy's own StartTime is when the copy began; the data is as of the source's.
	tags[TagTakenAt] = src.TakenAt().UTC().Format(time.RFC3339Nano)
	activity.RecordHeartbeat(ctx, SnapshotRequest{Step: id.step, Sent: true})
	out, err := dst.CopySnapshot(ctx, &ec2.CopySnapshotInput{
		SourceSnapshotId:  aws.String(in.SourceSnapshotID),
		SourceRegion:      aws.String(srcRegion),
		Description:       optional(in.Description),
		TagSpecifications: tagSpec(types.ResourceTypeSnapshot, tags),
	})
	if err != nil {
		return Snapshot{}, cloudError("CopySnapshot", err)
	}
	// The copy call returns only the id; report the copy as EC2 sees it now, or, where it is
	// not visible yet (eventual consistency), as just started.
	cp, err := c.describeSnapshot(ctx, dstRegion, aws.ToString(out.SnapshotId))
	if isType(err, ErrSnapshotNotFound) {
		return Snapshot{ID: aws.ToString(out.SnapshotId), Region: dstRegion, VolumeID: src.VolumeID,
			State: string(types.SnapshotStatePending), Description: in.Description, Tags: tags}, nil
	}
	return cp, err
}

func (c *Cloud) describeSnapshot(ctx context.Context, region, id string) (Snapshot, error) {
	out, err := c.Clients.EC2For(region).DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil {
		return Snapshot{}, cloudError("DescribeSnapshots", err)
	}
	if len(out.Snapshots) == 0 {
		return Snapshot{}, temporal.NewNonRetryableApplicationError("snapshot "+id+" not found in "+region, ErrSnapshotNotFound, nil)
	}
	return toSnapshot(out.Snapshots[0], region), nil
}

// WaitSnapshotInput waits for a snapshot to complete.
type WaitSnapshotInput struct {
	SnapshotID   string
	Region       string // "" for the home region (copies live in their destination region)
	PollInterval time.Duration
	Timeout      time.Duration
}

// SnapshotProgress is WaitSnapshot's heartbeat: the workflow's Status query and the
// Temporal UI show it, and a retried attempt resumes from it.
type SnapshotProgress struct {
	SnapshotID string
	State      string
	Progress   int // percent
	Polls      int
}

// WaitSnapshot polls DescribeSnapshots with the SDK's SnapshotCompleted waiter until the
// snapshot completes, heartbeating its progress. A retried attempt starts from the last
// heartbeat, so the progress it reports never goes backwards. A snapshot in state error
// fails non-retryably (SnapshotFailed): the workflow must take a new one.
func (c *Cloud) WaitSnapshot(ctx context.Context, in WaitSnapshotInput) (Snapshot, error) {
	if in.SnapshotID == "" {
		return Snapshot{}, invalidInput("SnapshotID is required")
	}
	last := SnapshotProgress{SnapshotID: in.SnapshotID}
	if activity.HasHeartbeatDetails(ctx) {
		var prev SnapshotProgress
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil && prev.SnapshotID == in.SnapshotID {
			last = prev
		}
	}
	region := cmp.Or(in.Region, c.Clients.Region)
	interval, maxWait := waitBounds(ctx, in.PollInterval, in.Timeout)
	progress := func(out *ec2.DescribeSnapshotsOutput) {
		last.Polls++
		if out != nil && len(out.Snapshots) > 0 {
			s := out.Snapshots[0]
			last.State = string(s.State)
			last.Progress = max(last.Progress, parseProgress(aws.ToString(s.Progress)))
		}
		activity.RecordHeartbeat(ctx, last)
	}
	out, err := ec2.NewSnapshotCompletedWaiter(c.Clients.EC2For(region), func(o *ec2.SnapshotCompletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = interval, interval
		o.Retryable = heartbeatRetryable(o.Retryable, progress, "snapshot "+in.SnapshotID+" failed")
	}).WaitForOutput(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{in.SnapshotID}}, maxWait)
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == ErrWaitFailed {
			return Snapshot{}, temporal.NewNonRetryableApplicationError(appErr.Message(), ErrSnapshotFailed, nil)
		}
		return Snapshot{}, waitError("wait for snapshot", err)
	}
	return toSnapshot(out.Snapshots[0], region), nil
}

// ---------------------------------------------------------------------------------------
// Waiting.

// waitBounds returns the poll interval and the longest wait: the input's timeout, else what
// is left of the activity's deadline.
func waitBounds(ctx context.Context, interval, timeout time.Duration) (time.Duration, time.Duration) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	if timeout <= 0 {
		timeout = 24 * time.Hour
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
	}
	if timeout <= interval {
		// The SDK waiter needs room for at least one delay.
		timeout = interval + time.Millisecond
	}
	return interval, timeout
}

// notFoundGrace is how many first polls may answer NotFound before a wait gives up: EC2 is
// eventually consistent, and a resource just created may not be visible to Describe yet.
const notFoundGrace = 3

// heartbeatRetryable wraps an SDK waiter's Retryable: it heartbeats every poll with the
// response, polls again when a resource is not visible yet (the first notFoundGrace polls),
// and turns the waiter's terminal failure state (the resource reached a state from which the
// wanted one is unreachable) into a non-retryable WaitFailed error.
func heartbeatRetryable[I, O any](
	orig func(context.Context, *I, *O, error) (bool, error),
	progress func(*O),
	failed string,
) func(context.Context, *I, *O, error) (bool, error) {
	polls := 0
	return func(ctx context.Context, in *I, out *O, err error) (bool, error) {
		polls++
		if err == nil {
			progress(out)
		} else if strings.HasSuffix(awsCode(err), ".NotFound") && polls <= notFoundGrace {
			return true, nil
		}
		retry, rerr := orig(ctx, in, out, err)
		if rerr != nil && err == nil {
			return false, temporal.NewNonRetryableApplicationError(failed, ErrWaitFailed, nil)
		}
		return retry, rerr
	}
}

// waitError maps what an SDK waiter returned: our typed errors as they are, AWS errors
// through cloudError, "exceeded max wait time" as a retryable error.
func waitError(op string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return cloudError(op, err)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// ---------------------------------------------------------------------------------------
// Conversions.

func toInstance(i types.Instance) Instance {
	r := Instance{
		ID:           aws.ToString(i.InstanceId),
		InstanceType: string(i.InstanceType),
		ImageID:      aws.ToString(i.ImageId),
		PrivateIP:    aws.ToString(i.PrivateIpAddress),
		PublicIP:     aws.ToString(i.PublicIpAddress),
		VPCID:        aws.ToString(i.VpcId),
		LaunchTime:   aws.ToTime(i.LaunchTime),
		Tags:         tagMap(i.Tags),
	}
	r.Name = r.Tags[TagName]
	if i.State != nil {
		r.State = string(i.State.Name)
	}
	if i.Placement != nil {
		r.Zone = aws.ToString(i.Placement.AvailabilityZone)
	}
	return r
}

func toVolume(v types.Volume) Volume {
	r := Volume{
		ID:         aws.ToString(v.VolumeId),
		State:      string(v.State),
		Zone:       aws.ToString(v.AvailabilityZone),
		SizeGiB:    aws.ToInt32(v.Size),
		VolumeType: string(v.VolumeType),
		Iops:       aws.ToInt32(v.Iops),
		Throughput: aws.ToInt32(v.Throughput),
		SnapshotID: aws.ToString(v.SnapshotId),
		CreateTime: aws.ToTime(v.CreateTime),
		Tags:       tagMap(v.Tags),
	}
	r.Name = r.Tags[TagName]
	for _, a := range v.Attachments {
		r.Attachments = append(r.Attachments, Attachment{
			VolumeID:   aws.ToString(a.VolumeId),
			InstanceID: aws.ToString(a.InstanceId),
			Device:     aws.ToString(a.Device),
			State:      string(a.State),
		})
	}
	return r
}

func toSnapshot(s types.Snapshot, region string) Snapshot {
	return Snapshot{
		ID:           aws.ToString(s.SnapshotId),
		Region:       region,
		VolumeID:     aws.ToString(s.VolumeId),
		State:        string(s.State),
		Progress:     parseProgress(aws.ToString(s.Progress)),
		StateMessage: aws.ToString(s.StateMessage),
		Description:  aws.ToString(s.Description),
		SizeGiB:      aws.ToInt32(s.VolumeSize),
		StartTime:    aws.ToTime(s.StartTime),
		CompletedAt:  aws.ToTime(s.CompletionTime),
		FullBytes:    aws.ToInt64(s.FullSnapshotSizeInBytes),
		Tags:         tagMap(s.Tags),
	}
}

func toHealth(s types.InstanceStatus) InstanceHealth {
	h := InstanceHealth{InstanceID: aws.ToString(s.InstanceId), Zone: aws.ToString(s.AvailabilityZone)}
	if s.InstanceState != nil {
		h.State = string(s.InstanceState.Name)
	}
	for _, sum := range []struct {
		into *string
		from *types.InstanceStatusSummary
	}{{&h.SystemStatus, s.SystemStatus}, {&h.InstanceStatus, s.InstanceStatus}} {
		if sum.from == nil {
			continue
		}
		*sum.into = string(sum.from.Status)
		for _, d := range sum.from.Details {
			if d.ImpairedSince != nil && (h.ImpairedSince == nil || d.ImpairedSince.Before(*h.ImpairedSince)) {
				t := *d.ImpairedSince
				h.ImpairedSince = &t
			}
		}
	}
	for _, e := range s.Events {
		h.Events = append(h.Events, string(e.Code)+": "+aws.ToString(e.Description))
	}
	return h
}

func tagMap(tags []types.Tag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// parseProgress reads EC2's snapshot progress ("42%", "" while unknown) as a percent.
func parseProgress(s string) int {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if err != nil || n < 0 {
		return 0
	}
	return min(n, 100)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// isType reports whether err is an application error of type typ.
func isType(err error, typ string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == typ
}

// ---------------------------------------------------------------------------------------
// Errors.
// Error types of the application errors the cloud and host activities return. Workflows
// match them with temporal.ApplicationError.Type(). The non-retryable ones name failures no
// retry can fix; the retryable ones are typed so that a workflow can tell them apart when
// its retry policy gives up.
const (
	// Non-retryable.
	ErrInvalidInput                = "InvalidInput"                // the activity input itself is wrong
	ErrInvalidParameter            = "InvalidParameter"            // the cloud rejected a parameter
	ErrIdempotentParameterMismatch = "IdempotentParameterMismatch" // one ClientToken, different parameters
	ErrInstanceNotFound            = "InstanceNotFound"
	ErrVolumeNotFound              = "VolumeNotFound"
	ErrSnapshotNotFound            = "SnapshotNotFound"
	ErrVolumeAttachedElsewhere     = "VolumeAttachedElsewhere"  // attached to another instance or device
	ErrNoVerifiedCopy              = "NoVerifiedCopy"           // the "never lose a volume" interlock
	ErrSnapshotFailed              = "SnapshotFailed"           // the snapshot went to state error
	ErrWaitFailed                  = "WaitFailed"               // the resource reached a state it cannot leave for the wanted one
	ErrCommandNotFound             = "CommandNotFound"          // exit 127 on the host
	ErrUnexpectedOutput            = "UnexpectedOutput"         // a host command printed what we cannot parse
	ErrModificationRateExceeded    = "ModificationRateExceeded" // the volume was modified as often as AWS allows in 24 h

	// Retryable.
	ErrIncorrectState       = "IncorrectState"       // the resource is busy changing state
	ErrRequestLimitExceeded = "RequestLimitExceeded" // the API throttled us
	ErrCommandFailed        = "CommandFailed"        // a host command exited non-zero
	ErrHostUnreachable      = "HostUnreachable"      // SSM cannot reach the host (agent down, host failed)
)

// awsCodeTypes maps AWS error codes to our error types and whether a retry can help.
var awsCodeTypes = map[string]struct {
	typ       string
	retryable bool
}{
	"InvalidInstanceID.NotFound":          {ErrInstanceNotFound, false},
	"InvalidInstanceID.Malformed":         {ErrInstanceNotFound, false},
	"InvalidVolume.NotFound":              {ErrVolumeNotFound, false},
	"InvalidVolumeID.Malformed":           {ErrVolumeNotFound, false},
	"InvalidSnapshot.NotFound":            {ErrSnapshotNotFound, false},
	"NoSuchHostedZone":                    {ErrInvalidParameter, false},
	"InvalidChangeBatch":                  {ErrInvalidParameter, false},
	"InvalidInput":                        {ErrInvalidParameter, false},
	"PriorRequestNotComplete":             {ErrIncorrectState, true},
	"NoSuchChange":                        {ErrInvalidParameter, false},
	"InvalidVPCId":                        {ErrInvalidParameter, false},
	"InvalidDomainName":                   {ErrInvalidParameter, false},
	"ConflictingDomainExists":             {ErrInvalidParameter, false},
	"HostedZoneNotEmpty":                  {ErrIncorrectState, true},
	"InvalidSnapshotID.Malformed":         {ErrSnapshotNotFound, false},
	"IdempotentParameterMismatch":         {ErrIdempotentParameterMismatch, false},
	"InvalidParameterValue":               {ErrInvalidParameter, false},
	"InvalidParameterCombination":         {ErrInvalidParameter, false},
	"InvalidParameter":                    {ErrInvalidParameter, false},
	"MissingParameter":                    {ErrInvalidParameter, false},
	"InvalidAMIID.NotFound":               {ErrInvalidParameter, false},
	"InvalidAMIID.Malformed":              {ErrInvalidParameter, false},
	"InvalidAvailabilityZone":             {ErrInvalidParameter, false},
	"InvalidZone.NotFound":                {ErrInvalidParameter, false},
	"IncorrectState":                      {ErrIncorrectState, true},
	"IncorrectInstanceState":              {ErrIncorrectState, true},
	"VolumeInUse":                         {ErrIncorrectState, true},
	"RequestLimitExceeded":                {ErrRequestLimitExceeded, true},
	"Throttling":                          {ErrRequestLimitExceeded, true},
	"ThrottlingException":                 {ErrRequestLimitExceeded, true},
	"InvalidInstanceId":                   {ErrHostUnreachable, true},
	"InsufficientInstanceCapacity":        {ErrIncorrectState, true},
	"InvalidInstanceID":                   {ErrInstanceNotFound, false},
	"InvalidVolume.ZoneMismatch":          {ErrInvalidParameter, false},
	"InvalidParameterDependency":          {ErrInvalidParameter, false},
	"UnsupportedOperation":                {ErrInvalidParameter, false},
	"VolumeModificationRateExceeded":      {ErrModificationRateExceeded, false},
	"IncorrectModificationState":          {ErrIncorrectState, true},
	"InvalidAttachment.NotFound":          {ErrVolumeNotFound, false},
	"InvalidSnapshot.InUse":               {ErrIncorrectState, true},
	"ConcurrentSnapshotLimitExceeded":     {ErrRequestLimitExceeded, true},
	"SnapshotCreationPerVolumeRateExceed": {ErrRequestLimitExceeded, true},
}

// awsCode returns the AWS error code in err's chain, or "".
func awsCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// cloudError turns an AWS SDK error from op into what the activity returns: a typed
// application error for the codes we know (non-retryable where no retry can fix it), the
// context's error when the activity was cancelled, else the error as is (retryable).
func cloudError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", op, err)
	}
	t, ok := awsCodeTypes[apiErr.ErrorCode()]
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	// The cause carries the request id and status; the message stays short for the UI.
	msg := fmt.Sprintf("%s: %s: %s", op, apiErr.ErrorCode(), apiErr.ErrorMessage())
	if t.retryable {
		return temporal.NewApplicationErrorWithCause(msg, t.typ, err)
	}
	return temporal.NewNonRetryableApplicationError(msg, t.typ, err)
}

// invalidInput is the non-retryable error for an activity input that can never succeed.
func invalidInput(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrInvalidInput, nil)
}
