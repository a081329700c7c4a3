package activities

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

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
	return attachmentOf(out.VolumeId, out.InstanceId, out.Device, out.State), nil
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
	return attachmentOf(out.VolumeId, out.InstanceId, out.Device, out.State), nil
}

// attachmentOf is the attachment AttachVolume's or DetachVolume's answer describes.
func attachmentOf(volumeID, instanceID, device *string, state types.VolumeAttachmentState) Attachment {
	return Attachment{
		VolumeID:   aws.ToString(volumeID),
		InstanceID: aws.ToString(instanceID),
		Device:     aws.ToString(device),
		State:      string(state),
	}
}

// attachedTo returns a volume's current attachment, if any.
func attachedTo(v Volume) (Attachment, bool) {
	for _, a := range v.Attachments {
		if a.State != "detached" && a.State != "" {
			return a, true
		}
	}
	return Attachment{}, false
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
	polls := pollResource(ctx, in.VolumeID, in.PollInterval, in.Timeout, func(out *ec2.DescribeVolumesOutput) string {
		if len(out.Volumes) > 0 {
			return string(out.Volumes[0].State)
		}
		return ""
	})
	params := &ec2.DescribeVolumesInput{VolumeIds: []string{in.VolumeID}}
	client := c.Clients.EC2For(in.Region)
	failed := "volume " + in.VolumeID + " cannot become " + want
	var out *ec2.DescribeVolumesOutput
	var err error
	switch want {
	case "available":
		out, err = ec2.NewVolumeAvailableWaiter(client, func(o *ec2.VolumeAvailableWaiterOptions) {
			o.MinDelay, o.MaxDelay = polls.interval, polls.interval
			o.Retryable = heartbeatRetryable(o.Retryable, polls.progress, failed)
		}).WaitForOutput(ctx, params, polls.maxWait)
	case "in-use":
		out, err = ec2.NewVolumeInUseWaiter(client, func(o *ec2.VolumeInUseWaiterOptions) {
			o.MinDelay, o.MaxDelay = polls.interval, polls.interval
			inUse := heartbeatRetryable(o.Retryable, polls.progress, failed)
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
		}).WaitForOutput(ctx, params, polls.maxWait)
	}
	if err != nil {
		return Volume{}, waitError("wait for volume "+want, err)
	}
	return toVolume(out.Volumes[0]), nil
}
