package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"go.temporal.io/sdk/temporal"
)

// DNS: the file service's name is a record of a Route 53 private hosted zone, which clients
// mount by name; a failover moves the record.

// EnsurePrivateZoneInput names a private hosted zone of a VPC.
type EnsurePrivateZoneInput struct {
	// Step and Scope make the zone's CallerReference with the workflow id, as a ClientToken.
	Step  string
	Scope string
	Name  string // e.g. live.internal.
	// VPCID and VPCRegion are the VPC whose hosts resolve the zone (an instance's VPCID);
	// VPCRegion defaults to the home region.
	VPCID     string
	VPCRegion string
	Comment   string
}

// HostedZone is a Route 53 hosted zone.
type HostedZone struct {
	ID      string // /hostedzone/Z…
	Name    string // with the trailing dot
	Private bool
	// ChangeID is the creation's change; empty when an earlier attempt created the zone.
	ChangeID string
}

// EnsurePrivateZone creates the private hosted zone once. Its CallerReference is derived from
// the workflow id, Scope and Step: Route 53 refuses a second zone with the same reference
// (HostedZoneAlreadyExists), and a retry then finds the first attempt's zone by its name and
// reference and returns it.
func (c *Cloud) EnsurePrivateZone(ctx context.Context, in EnsurePrivateZoneInput) (HostedZone, error) {
	if in.Name == "" || in.VPCID == "" {
		return HostedZone{}, invalidInput("Name and VPCID are required")
	}
	id, err := stepToken(ctx, in.Scope, in.Step)
	if err != nil {
		return HostedZone{}, err
	}
	name := strings.ToLower(strings.TrimSuffix(in.Name, ".")) + "."
	out, err := c.Clients.Route53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{
		Name:             aws.String(name),
		CallerReference:  aws.String(id.token),
		VPC:              &r53types.VPC{VPCId: aws.String(in.VPCID), VPCRegion: r53types.VPCRegion(cmp.Or(in.VPCRegion, c.Clients.Region))},
		HostedZoneConfig: &r53types.HostedZoneConfig{PrivateZone: true, Comment: optional(truncate(in.Comment, 256))},
	})
	var exists *r53types.HostedZoneAlreadyExists
	switch {
	case errors.As(err, &exists):
		return c.zoneByCallerReference(ctx, name, id.token)
	case err != nil:
		return HostedZone{}, cloudError("CreateHostedZone", err)
	}
	return HostedZone{ID: aws.ToString(out.HostedZone.Id), Name: aws.ToString(out.HostedZone.Name), Private: true,
		ChangeID: aws.ToString(out.ChangeInfo.Id)}, nil
}

// zoneByCallerReference finds the zone named name that a call with the reference created.
func (c *Cloud) zoneByCallerReference(ctx context.Context, name, ref string) (HostedZone, error) {
	in := &route53.ListHostedZonesByNameInput{DNSName: aws.String(name)}
	for {
		out, err := c.Clients.Route53.ListHostedZonesByName(ctx, in)
		if err != nil {
			return HostedZone{}, cloudError("ListHostedZonesByName", err)
		}
		for _, z := range out.HostedZones {
			if aws.ToString(z.Name) != name {
				return HostedZone{}, zoneNotFound(name)
			}
			if aws.ToString(z.CallerReference) == ref {
				return HostedZone{ID: aws.ToString(z.Id), Name: name, Private: z.Config != nil && z.Config.PrivateZone}, nil
			}
		}
		if !out.IsTruncated {
			return HostedZone{}, zoneNotFound(name)
		}
		in.DNSName, in.HostedZoneId = out.NextDNSName, out.NextHostedZoneId
	}
}

func zoneNotFound(name string) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("the caller reference of zone %s was used by a zone that no longer exists (or was renamed)", name), ErrInvalidParameter, nil)
}

// DeleteZoneInput names a hosted zone to delete.
type DeleteZoneInput struct {
	HostedZoneID string
}

// DeleteZone deletes a hosted zone with every record set it holds (what a throw-away
// cluster's teardown does); a zone that is gone already is success.
func (c *Cloud) DeleteZone(ctx context.Context, in DeleteZoneInput) error {
	if in.HostedZoneID == "" {
		return invalidInput("HostedZoneID is required")
	}
	z, err := c.Clients.Route53.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(in.HostedZoneID)})
	var gone *r53types.NoSuchHostedZone
	if errors.As(err, &gone) {
		return nil
	}
	if err != nil {
		return cloudError("GetHostedZone", err)
	}
	apex := aws.ToString(z.HostedZone.Name)
	var deletes []r53types.Change
	p := route53.NewListResourceRecordSetsPaginator(c.Clients.Route53, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(in.HostedZoneID)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return cloudError("ListResourceRecordSets", err)
		}
		for _, rs := range page.ResourceRecordSets {
			if aws.ToString(rs.Name) == apex && (rs.Type == r53types.RRTypeSoa || rs.Type == r53types.RRTypeNs) {
				continue // the zone's own; they go with it
			}
			deletes = append(deletes, r53types.Change{Action: r53types.ChangeActionDelete, ResourceRecordSet: &rs})
		}
	}
	if len(deletes) > 0 {
		if _, err := c.Clients.Route53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
			HostedZoneId: aws.String(in.HostedZoneID), ChangeBatch: &r53types.ChangeBatch{Changes: deletes},
		}); err != nil {
			return cloudError("ChangeResourceRecordSets", err) // a concurrent change: InvalidChangeBatch, retried by the caller
		}
	}
	if _, err := c.Clients.Route53.DeleteHostedZone(ctx, &route53.DeleteHostedZoneInput{Id: aws.String(in.HostedZoneID)}); err != nil && !errors.As(err, &gone) {
		return cloudError("DeleteHostedZone", err)
	}
	return nil
}

// RecordInput names one record set.
type RecordInput struct {
	HostedZoneID string
	Name         string
	Type         string // A when empty
}

// Record is a record set as the Route 53 API shows it (what resolvers serve may still be the
// previous values until the last change is INSYNC, and caches hold them for the TTL).
type Record struct {
	Found  bool
	Name   string
	Type   string
	TTL    int64
	Values []string
}

// GetRecord reads a record set; a missing one is Found false, not an error.
func (c *Cloud) GetRecord(ctx context.Context, in RecordInput) (Record, error) {
	if in.HostedZoneID == "" || in.Name == "" {
		return Record{}, invalidInput("HostedZoneID and Name are required")
	}
	name := strings.ToLower(strings.TrimSuffix(in.Name, ".")) + "."
	rrType := r53types.RRType(cmp.Or(in.Type, "A"))
	out, err := c.Clients.Route53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(in.HostedZoneID), StartRecordName: aws.String(name), StartRecordType: rrType, MaxItems: aws.Int32(1),
	})
	if err != nil {
		return Record{}, cloudError("ListResourceRecordSets", err)
	}
	r := Record{Name: name, Type: string(rrType)}
	if len(out.ResourceRecordSets) == 1 && aws.ToString(out.ResourceRecordSets[0].Name) == name && out.ResourceRecordSets[0].Type == rrType {
		rs := out.ResourceRecordSets[0]
		r.Found, r.TTL = true, aws.ToInt64(rs.TTL)
		for _, v := range rs.ResourceRecords {
			r.Values = append(r.Values, aws.ToString(v.Value))
		}
	}
	return r, nil
}

// SwitchRecordInput points a DNS name at new values, e.g. the NFS name of a cluster at the
// backup server that takes over.
type SwitchRecordInput struct {
	HostedZoneID string
	Name         string   // e.g. files.cluster-1.internal.
	Type         string   // A when empty
	TTL          int64    // 60 when 0
	Values       []string // e.g. the new server's private IP
	Comment      string
}

// RecordChange is a submitted Route53 change.
type RecordChange struct {
	ChangeID string
	Status   string // PENDING, INSYNC
}

// SwitchRecord UPSERTs the record: setting it to the values it already has is a no-op, so a
// retry is harmless.
func (c *Cloud) SwitchRecord(ctx context.Context, in SwitchRecordInput) (RecordChange, error) {
	if in.HostedZoneID == "" || in.Name == "" || len(in.Values) == 0 {
		return RecordChange{}, invalidInput("HostedZoneID, Name and Values are required")
	}
	rrType := r53types.RRType(cmp.Or(in.Type, "A"))
	ttl := in.TTL
	if ttl <= 0 {
		ttl = 60
	}
	var records []r53types.ResourceRecord
	for _, v := range in.Values {
		records = append(records, r53types.ResourceRecord{Value: aws.String(v)})
	}
	out, err := c.Clients.Route53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(in.HostedZoneID),
		ChangeBatch: &r53types.ChangeBatch{
			Comment: optional(in.Comment),
			Changes: []r53types.Change{{
				Action: r53types.ChangeActionUpsert,
				ResourceRecordSet: &r53types.ResourceRecordSet{
					Name: aws.String(in.Name), Type: rrType, TTL: aws.Int64(ttl), ResourceRecords: records,
				},
			}},
		},
	})
	if err != nil {
		return RecordChange{}, cloudError("ChangeResourceRecordSets", err)
	}
	return RecordChange{ChangeID: aws.ToString(out.ChangeInfo.Id), Status: string(out.ChangeInfo.Status)}, nil
}

// WaitRecordInput waits for a Route53 change to reach every name server.
type WaitRecordInput struct {
	ChangeID     string
	PollInterval time.Duration
	Timeout      time.Duration
}

// WaitRecordInSync waits, with the SDK's waiter, until the change is INSYNC: every Route 53
// name server answers with it (resolvers that cached the old answer keep it for its TTL).
func (c *Cloud) WaitRecordInSync(ctx context.Context, in WaitRecordInput) (RecordChange, error) {
	if in.ChangeID == "" {
		return RecordChange{}, invalidInput("ChangeID is required")
	}
	polls := pollResource(ctx, in.ChangeID, in.PollInterval, in.Timeout, func(out *route53.GetChangeOutput) string {
		return string(out.ChangeInfo.Status)
	})
	out, err := route53.NewResourceRecordSetsChangedWaiter(c.Clients.Route53, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay, o.MaxDelay = polls.interval, polls.interval
		o.Retryable = heartbeatRetryable(o.Retryable, polls.progress, "change "+in.ChangeID+" failed")
	}).WaitForOutput(ctx, &route53.GetChangeInput{Id: aws.String(in.ChangeID)}, polls.maxWait)
	if err != nil {
		return RecordChange{}, waitError("wait for DNS change", err)
	}
	return RecordChange{ChangeID: aws.ToString(out.ChangeInfo.Id), Status: string(out.ChangeInfo.Status)}, nil
}
