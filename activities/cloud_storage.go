package activities

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// Elastic Volumes: a volume's type, size, IOPS and throughput changed while it stays attached
// (and, under DRBD, UpToDate). The rules are AWS's (anyops.InPlace, anyops.VolumeSpec.Check):
// the cloud says the rest — four modifications in a rolling 24 hours, each after the last
// completed.

// ModifyVolumeInput changes a volume to Spec.
type ModifyVolumeInput struct {
	VolumeID string
	Spec     anyops.VolumeSpec
}

// VolumeModification is a volume's latest modification as the cloud reports it.
type VolumeModification struct {
	VolumeID string
	State    string // modifying, optimizing, completed, failed
	Progress int64
	Target   anyops.VolumeSpec
	Started  time.Time
	// Already: the volume had the target spec before this call asked for it (a retry of a
	// call that succeeded, or nothing to change); no modification was started now.
	Already bool
}

// SpecOf is a volume's configuration.
func (v Volume) SpecOf() anyops.VolumeSpec {
	return anyops.VolumeSpec{Type: anyops.VolumeType(v.VolumeType), SizeGiB: v.SizeGiB, Iops: v.Iops, Throughput: v.Throughput}
}

// sameSpec is whether a volume's configuration is want, the defaults of want's type filled in.
func sameSpec(have, want anyops.VolumeSpec) bool {
	if want.Iops == 0 {
		want.Iops = anyops.DefaultVolumeIops(want.Type, want.SizeGiB)
	}
	if want.Type == anyops.VolumeGP3 && want.Throughput == 0 {
		want.Throughput = anyops.GP3BaseThroughput
	}
	if want.Type != anyops.VolumeGP3 {
		have.Throughput, want.Throughput = 0, 0
	}
	return have == want
}

// ModifyVolume asks for the change with ModifyVolume. It is idempotent by looking first: a
// volume that already has the spec (a retry after the call went through, or a modification
// under way to it) is success with Already; otherwise the change is checked against AWS's
// rules first — a magnetic volume, or a smaller size, is a non-retryable InvalidInput naming
// the rule (take the snapshot path instead) — and asked for. The cloud's refusals keep their
// types: ModificationRateExceeded (non-retryable: the next is possible only later, as its
// message says), IncorrectState while a modification runs (retryable).
func (c *Cloud) ModifyVolume(ctx context.Context, in ModifyVolumeInput) (VolumeModification, error) {
	if in.VolumeID == "" {
		return VolumeModification{}, invalidInput("VolumeID is required")
	}
	if err := in.Spec.Check(); err != nil {
		return VolumeModification{}, invalidInput("%v", err)
	}
	vol, err := c.describeVolume(ctx, in.VolumeID)
	if err != nil {
		return VolumeModification{}, err
	}
	if sameSpec(vol.SpecOf(), in.Spec) {
		m, err := c.latestModification(ctx, in.VolumeID)
		if err != nil {
			return VolumeModification{}, err
		}
		m.Already, m.Target = true, in.Spec
		if m.State == "" {
			m.State = "completed"
		}
		return m, nil
	}
	if ok, why := anyops.InPlace(vol.SpecOf(), in.Spec); !ok {
		return VolumeModification{}, invalidInput("volume %s cannot be changed in place: %s", in.VolumeID, why)
	}
	req := &ec2.ModifyVolumeInput{VolumeId: aws.String(in.VolumeID), VolumeType: types.VolumeType(in.Spec.Type), Size: aws.Int32(in.Spec.SizeGiB),
		Iops: positive(in.Spec.Iops), Throughput: positive(in.Spec.Throughput)}
	out, err := c.Clients.EC2.ModifyVolume(ctx, req)
	if err != nil {
		return VolumeModification{}, cloudError("ModifyVolume", err)
	}
	return toModification(*out.VolumeModification), nil
}

func (c *Cloud) latestModification(ctx context.Context, id string) (VolumeModification, error) {
	out, err := c.Clients.EC2.DescribeVolumesModifications(ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{id}})
	if err != nil {
		if awsCode(err) == "InvalidVolumeModification.NotFound" {
			return VolumeModification{VolumeID: id}, nil // never modified
		}
		return VolumeModification{}, cloudError("DescribeVolumesModifications", err)
	}
	mods := out.VolumesModifications
	if len(mods) == 0 {
		return VolumeModification{VolumeID: id}, nil
	}
	slices.SortFunc(mods, func(a, b types.VolumeModification) int {
		return aws.ToTime(a.StartTime).Compare(aws.ToTime(b.StartTime))
	})
	return toModification(mods[len(mods)-1]), nil
}

func toModification(m types.VolumeModification) VolumeModification {
	return VolumeModification{
		VolumeID: aws.ToString(m.VolumeId), State: string(m.ModificationState), Progress: aws.ToInt64(m.Progress),
		Target: anyops.VolumeSpec{Type: anyops.VolumeType(m.TargetVolumeType), SizeGiB: aws.ToInt32(m.TargetSize),
			Iops: aws.ToInt32(m.TargetIops), Throughput: aws.ToInt32(m.TargetThroughput)},
		Started: aws.ToTime(m.StartTime),
	}
}

// WaitVolumeModificationInput waits for a volume's modification.
type WaitVolumeModificationInput struct {
	VolumeID string
	// UntilCompleted waits for completed; else optimizing is enough: the volume has its new
	// configuration then, and performs between the two until it completes.
	UntilCompleted bool
	PollInterval   time.Duration
	Timeout        time.Duration
}

// WaitVolumeModification polls the volume's latest modification, heartbeating its state and
// progress, until it is optimizing (or completed, when asked); failed is a non-retryable
// WaitFailed. Read-only: repeatable.
func (c *Cloud) WaitVolumeModification(ctx context.Context, in WaitVolumeModificationInput) (VolumeModification, error) {
	if in.VolumeID == "" {
		return VolumeModification{}, invalidInput("VolumeID is required")
	}
	interval, maxWait := waitBounds(ctx, in.PollInterval, in.Timeout)
	deadline := time.Now().Add(maxWait)
	for {
		m, err := c.latestModification(ctx, in.VolumeID)
		if err != nil {
			return m, err
		}
		activity.RecordHeartbeat(ctx, m)
		switch m.State {
		case "completed", "":
			return m, nil
		case "optimizing":
			if !in.UntilCompleted {
				return m, nil
			}
		case "failed":
			return m, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the modification of %s failed", in.VolumeID), ErrWaitFailed, nil, m)
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("volume %s still %s after %s", in.VolumeID, m.State, maxWait)
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// DescribeVolumesInput names volumes to describe.
type DescribeVolumesInput struct {
	VolumeIDs []string
}

// DescribeVolumes reports volumes by id: their configuration, state and attachments. A volume
// that does not exist is the non-retryable VolumeNotFound. It only reads.
func (c *Cloud) DescribeVolumes(ctx context.Context, in DescribeVolumesInput) ([]Volume, error) {
	if len(in.VolumeIDs) == 0 {
		return nil, nil
	}
	out, err := c.Clients.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: in.VolumeIDs})
	if err != nil {
		return nil, cloudError("DescribeVolumes", err)
	}
	vols := make([]Volume, 0, len(out.Volumes))
	for _, v := range out.Volumes {
		vols = append(vols, toVolume(v))
	}
	slices.SortFunc(vols, func(a, b Volume) int { return strings.Compare(a.ID, b.ID) })
	return vols, nil
}

// SnapshotRef names a snapshot.
type SnapshotRef struct {
	SnapshotID string
	Region     string // "" for the home region
}

// DescribeSnapshot reports a snapshot as EC2 has it now: its state and progress (the percent
// a release's Status shows while it waits), and once completed its completion time and full
// size. A snapshot that does not exist is the non-retryable SnapshotNotFound. It only reads.
func (c *Cloud) DescribeSnapshot(ctx context.Context, in SnapshotRef) (Snapshot, error) {
	if in.SnapshotID == "" {
		return Snapshot{}, invalidInput("SnapshotID is required")
	}
	return c.describeSnapshot(ctx, cmp.Or(in.Region, c.Clients.Region), in.SnapshotID)
}
