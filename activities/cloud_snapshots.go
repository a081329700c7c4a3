package activities

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

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
	// The look must end inside the attempt, with a quarter of its time left to send: an
	// attempt shorter than the window would otherwise time out looking, and so would every
	// attempt after it, for a request that never reached EC2.
	if end, ok := ctx.Deadline(); ok {
		if latest := time.Now().Add(time.Until(end) * 3 / 4); latest.Before(deadline) {
			deadline = latest
		}
	}
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
