package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// Cloud activities of the recoveries: fencing a failed server, moving its volumes only once it
// is fenced, and never throwing away the only copy of data. Each is an interlock in code: the
// refusal is a non-retryable error of the interlock's type, and only an Override (filled by a
// workflow from an audited human decision) passes it.

// Error types of the interlocks (anyops.Interlock names each).
const (
	ErrUnfenced     = "Unfenced"     // the server is not fenced: nothing may take its data over
	ErrOnlyCopy     = "OnlyCopy"     // the step would throw away the only copy of data
	ErrNotUpToDate  = "NotUpToDate"  // the copy to promote is not UpToDate
	ErrTwoPrimaries = "TwoPrimaries" // a peer is Primary already
)

// InterlockError is the refusal of an interlock: a non-retryable application error whose type
// names it and whose details are the interlock's name, so a workflow can ask for the override.
func InterlockError(lock anyops.Interlock, typ, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), typ, nil, lock)
}

// InterlockOf says which interlock refused, when err is such a refusal.
func InterlockOf(err error) (anyops.Interlock, bool) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return "", false
	}
	switch app.Type() {
	case ErrUnfenced:
		return anyops.InterlockUnfenced, true
	case ErrOnlyCopy:
		return anyops.InterlockOnlyCopy, true
	case ErrNotUpToDate:
		return anyops.InterlockNotUpToDate, true
	case ErrTwoPrimaries:
		return anyops.InterlockTwoPrimaries, true
	}
	return "", false
}

// fencedStates are the states of an instance that runs no operating system that could write
// to its volumes, once a forced stop has been accepted: EC2 powers a force-stopped instance
// off, however long the failed hardware takes to report it stopped.
var fencedStates = []string{"stopping", "stopped", "shutting-down", "terminated"}

// FenceInput fences one instance.
type FenceInput struct {
	InstanceID string
}

// Fence is how an instance was fenced.
type Fence struct {
	InstanceID string
	// State is the instance's state once the forced stop was accepted: stopping (failed
	// hardware takes up to ten minutes more to say stopped), stopped or terminated.
	State string
	// At is when the fence was seen in place (the worker's clock).
	At time.Time
}

// FenceInstance fences a failed server so that it can never write to its data again: a forced
// stop (StopInstances with Force: no clean shutdown, the hypervisor powers it off), then a look
// that the instance is no longer running. A stopped or terminated instance is fenced already;
// the call is repeatable. An instance that still runs after the stop was accepted is a
// retryable error (the next attempt stops it again).
func (c *Cloud) FenceInstance(ctx context.Context, in FenceInput) (Fence, error) {
	if in.InstanceID == "" {
		return Fence{}, invalidInput("InstanceID is required")
	}
	inst, err := c.describeInstance(ctx, in.InstanceID)
	if err != nil {
		return Fence{}, err
	}
	if inst.State == "stopped" || inst.State == "terminated" || inst.State == "shutting-down" {
		return Fence{InstanceID: in.InstanceID, State: inst.State, At: time.Now().UTC()}, nil
	}
	if _, err := c.StopInstance(ctx, StopInstanceInput{InstanceID: in.InstanceID, Force: true}); err != nil {
		return Fence{}, err
	}
	inst, err = c.describeInstance(ctx, in.InstanceID)
	if err != nil {
		return Fence{}, err
	}
	if !slices.Contains(fencedStates, inst.State) {
		return Fence{}, temporal.NewApplicationError(fmt.Sprintf("instance %s is %s after a forced stop", in.InstanceID, inst.State), ErrIncorrectState)
	}
	return Fence{InstanceID: in.InstanceID, State: inst.State, At: time.Now().UTC()}, nil
}

// describeInstance returns one instance, or the mapped NotFound error.
func (c *Cloud) describeInstance(ctx context.Context, id string) (Instance, error) {
	out, err := c.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return Instance{}, cloudError("DescribeInstances", err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			return toInstance(i), nil
		}
	}
	return Instance{}, temporal.NewNonRetryableApplicationError("instance "+id+" not found", ErrInstanceNotFound, nil)
}

// DescribeInstance reports one instance.
func (c *Cloud) DescribeInstance(ctx context.Context, in InstanceRef) (Instance, error) {
	if in.InstanceID == "" {
		return Instance{}, invalidInput("InstanceID is required")
	}
	return c.describeInstance(ctx, in.InstanceID)
}

// DetachFromFencedInput takes a data volume away from a failed server for good, to attach it
// to the server that takes over.
type DetachFromFencedInput struct {
	VolumeID   string
	InstanceID string // the failed server it is attached to
	// Override detaches although the server is not fenced; Reason must say why.
	Override *Override
}

// DetachFromFenced force-detaches a volume from a server, but only from a fenced one: an
// instance that is stopping after a forced stop, stopped or terminated. A server that may
// still run is refused with the Unfenced interlock (a force-detach under a live writer loses
// its writes and lets two servers hold one file system), unless the input carries an Override.
// A volume already detached (or detaching) is success; one attached elsewhere is
// VolumeAttachedElsewhere.
func (c *Cloud) DetachFromFenced(ctx context.Context, in DetachFromFencedInput) (Attachment, error) {
	if in.VolumeID == "" || in.InstanceID == "" {
		return Attachment{}, invalidInput("VolumeID and InstanceID are required")
	}
	if in.Override != nil && strings.TrimSpace(in.Override.Reason) == "" {
		return Attachment{}, invalidInput("an Override needs a Reason")
	}
	inst, err := c.describeInstance(ctx, in.InstanceID)
	if err != nil {
		return Attachment{}, err
	}
	if !slices.Contains(fencedStates, inst.State) {
		if in.Override == nil {
			return Attachment{}, InterlockError(anyops.InterlockUnfenced, ErrUnfenced,
				"refusing to force-detach %s from %s: the instance is %s, not fenced (stop it with force first)", in.VolumeID, in.InstanceID, inst.State)
		}
		activity.GetLogger(ctx).Warn("force-detaching from an unfenced instance: interlock overridden",
			"volume", in.VolumeID, "instance", in.InstanceID, "state", inst.State, "by", in.Override.By, "reason", in.Override.Reason)
	}
	return c.DetachVolume(ctx, DetachVolumeInput{VolumeID: in.VolumeID, InstanceID: in.InstanceID, Force: true})
}

// TerminateUnusedInput terminates a server a recovery made and no longer needs.
type TerminateUnusedInput struct {
	InstanceID string
	// Override terminates although data volumes are attached; Reason must say why.
	Override *Override
}

// TerminateUnused terminates an instance that holds no data: one with a data volume attached
// (anything but its root volume) is refused with the OnlyCopy interlock — the volume may be
// the only copy of that data, and terminating with delete-on-termination, or losing track of
// it, throws it away — unless the input carries an Override. Terminated already is success.
func (c *Cloud) TerminateUnused(ctx context.Context, in TerminateUnusedInput) (InstanceStateChange, error) {
	if in.InstanceID == "" {
		return InstanceStateChange{}, invalidInput("InstanceID is required")
	}
	if in.Override != nil && strings.TrimSpace(in.Override.Reason) == "" {
		return InstanceStateChange{}, invalidInput("an Override needs a Reason")
	}
	out, err := c.Clients.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{in.InstanceID}},
	}})
	if err != nil {
		return InstanceStateChange{}, cloudError("DescribeVolumes", err)
	}
	var data []string
	for _, v := range out.Volumes {
		vol := toVolume(v)
		if a, ok := attachedTo(vol); ok && a.InstanceID == in.InstanceID && !slices.Contains(bootDevices, a.Device) {
			data = append(data, vol.ID)
		}
	}
	if len(data) > 0 && in.Override == nil {
		return InstanceStateChange{}, InterlockError(anyops.InterlockOnlyCopy, ErrOnlyCopy,
			"refusing to terminate %s: data volumes %v are attached and may hold the only copy", in.InstanceID, data)
	}
	return c.TerminateInstance(ctx, InstanceRef{InstanceID: in.InstanceID})
}

// ZoneByNameInput names a hosted zone.
type ZoneByNameInput struct {
	Name string // e.g. live.internal.
}

// ZoneByName finds the hosted zone of that name (the first, if several): a recovery finds the
// zone the cluster's build made. None is a non-retryable InvalidParameter.
func (c *Cloud) ZoneByName(ctx context.Context, in ZoneByNameInput) (HostedZone, error) {
	name := strings.ToLower(strings.TrimSuffix(in.Name, ".")) + "."
	if name == "." {
		return HostedZone{}, invalidInput("Name is required")
	}
	out, err := c.Clients.Route53.ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{DNSName: aws.String(name), MaxItems: aws.Int32(1)})
	if err != nil {
		return HostedZone{}, cloudError("ListHostedZonesByName", err)
	}
	if len(out.HostedZones) == 0 || aws.ToString(out.HostedZones[0].Name) != name {
		return HostedZone{}, temporal.NewNonRetryableApplicationError("no hosted zone "+name, ErrInvalidParameter, nil)
	}
	z := out.HostedZones[0]
	return HostedZone{ID: aws.ToString(z.Id), Name: name, Private: z.Config != nil && z.Config.PrivateZone}, nil
}

// LatestSnapshotInput names a volume.
type LatestSnapshotInput struct {
	VolumeID string
}

// LatestSnapshotOutput is the newest completed snapshot of a volume, if it has one.
type LatestSnapshotOutput struct {
	Found    bool
	Snapshot Snapshot
}

// LatestSnapshot finds the newest completed snapshot of the volume (taken of it, or a copy
// tagged as preserving it): what makes another snapshot incremental, and so a new replica
// seeded from a snapshot faster than a full resync. It only reads.
func (c *Cloud) LatestSnapshot(ctx context.Context, in LatestSnapshotInput) (LatestSnapshotOutput, error) {
	if in.VolumeID == "" {
		return LatestSnapshotOutput{}, invalidInput("VolumeID is required")
	}
	var out LatestSnapshotOutput
	for _, filter := range []ec2types.Filter{
		{Name: aws.String("volume-id"), Values: []string{in.VolumeID}},
		{Name: aws.String("tag:" + TagSourceVolume), Values: []string{in.VolumeID}},
	} {
		p := ec2.NewDescribeSnapshotsPaginator(c.Clients.EC2, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []ec2types.Filter{filter, {Name: aws.String("status"), Values: []string{"completed"}}}})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return LatestSnapshotOutput{}, cloudError("DescribeSnapshots", err)
			}
			for _, s := range page.Snapshots {
				snap := toSnapshot(s, c.Clients.Region)
				if !out.Found || snap.TakenAt().After(out.Snapshot.TakenAt()) {
					out = LatestSnapshotOutput{Found: true, Snapshot: snap}
				}
			}
		}
	}
	return out, nil
}
