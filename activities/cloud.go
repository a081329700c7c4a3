package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
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
