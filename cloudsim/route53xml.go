package cloudsim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Route 53's XML documents, in the shapes aws-sdk-go-v2/service/route53 serializes and reads
// (element names in UpperCamelCase, lists as <ResourceRecords><ResourceRecord>…).

// xCreateHostedZoneRequest is the body of CreateHostedZone.
type xCreateHostedZoneRequest struct {
	XMLName          xml.Name `xml:"CreateHostedZoneRequest"`
	Name             string   `xml:"Name"`
	CallerReference  string   `xml:"CallerReference"`
	DelegationSetID  string   `xml:"DelegationSetId"`
	VPC              *xVPC    `xml:"VPC"`
	HostedZoneConfig *struct {
		Comment     string `xml:"Comment"`
		PrivateZone *bool  `xml:"PrivateZone"`
	} `xml:"HostedZoneConfig"`
}

// xChangeResourceRecordSetsRequest is the body of ChangeResourceRecordSets.
type xChangeResourceRecordSetsRequest struct {
	XMLName     xml.Name `xml:"ChangeResourceRecordSetsRequest"`
	ChangeBatch struct {
		Comment string    `xml:"Comment"`
		Changes []xChange `xml:"Changes>Change"`
	} `xml:"ChangeBatch"`
}

type xChange struct {
	Action            string `xml:"Action"`
	ResourceRecordSet struct {
		Name            string `xml:"Name"`
		Type            string `xml:"Type"`
		TTL             *int64 `xml:"TTL"`
		ResourceRecords []struct {
			Value string `xml:"Value"`
		} `xml:"ResourceRecords>ResourceRecord"`
		// Not simulated: present, they are refused rather than ignored.
		SetIdentifier           *string   `xml:"SetIdentifier"`
		AliasTarget             *struct{} `xml:"AliasTarget"`
		Weight                  *int64    `xml:"Weight"`
		Region                  *string   `xml:"Region"`
		GeoLocation             *struct{} `xml:"GeoLocation"`
		Failover                *string   `xml:"Failover"`
		MultiValueAnswer        *bool     `xml:"MultiValueAnswer"`
		HealthCheckID           *string   `xml:"HealthCheckId"`
		TrafficPolicyInstanceID *string   `xml:"TrafficPolicyInstanceId"`
	} `xml:"ResourceRecordSet"`
}

// decodeRoute53 decodes one request document strictly: a single root element of the expected
// name in Route 53's namespace, nothing after it.
func decodeRoute53(body []byte, v any) error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("text after the document")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return fmt.Errorf("more than one document")
		}
	}
}

func invalidInput(format string, args ...any) *apiError {
	return r53Err(400, "InvalidInput", format, args...)
}

// parseCreateHostedZone reads and checks a CreateHostedZone body.
func parseCreateHostedZone(body []byte) (*xCreateHostedZoneRequest, *apiError) {
	var in xCreateHostedZoneRequest
	if err := decodeRoute53(body, &in); err != nil {
		return nil, invalidInput("Invalid XML; %v", err)
	}
	switch {
	case in.XMLName.Space != route53Namespace:
		return nil, invalidInput("Invalid XML; the namespace must be %s", route53Namespace)
	case in.Name == "":
		return nil, invalidInput("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	case in.CallerReference == "" || len(in.CallerReference) > 128:
		return nil, invalidInput("1 validation error detected: Value at 'callerReference' failed to satisfy constraint: Member must have length between 1 and 128")
	case in.DelegationSetID != "":
		return nil, invalidInput("cloudsim does not simulate reusable delegation sets")
	case in.HostedZoneConfig != nil && len(in.HostedZoneConfig.Comment) > 256:
		return nil, invalidInput("1 validation error detected: Value at 'hostedZoneConfig.comment' failed to satisfy constraint: Member must have length less than or equal to 256")
	case in.VPC != nil && (in.VPC.VPCId == "" || in.VPC.VPCRegion == ""):
		return nil, invalidInput("Invalid request: a VPC needs VPCId and VPCRegion")
	}
	return &in, nil
}

// parseChangeBatch reads and checks the shape of a ChangeResourceRecordSets body; what the
// changes mean for the zone is validateChanges's.
func parseChangeBatch(body []byte) (*xChangeResourceRecordSetsRequest, *apiError) {
	var in xChangeResourceRecordSetsRequest
	if err := decodeRoute53(body, &in); err != nil {
		return nil, invalidInput("Invalid XML; %v", err)
	}
	if in.XMLName.Space != route53Namespace {
		return nil, invalidInput("Invalid XML; the namespace must be %s", route53Namespace)
	}
	changes := in.ChangeBatch.Changes
	switch {
	case len(changes) == 0:
		return nil, invalidInput("1 validation error detected: Value '[]' at 'changeBatch.changes' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case len(changes) > maxChangesPerBatch:
		return nil, invalidInput("Number of changes %d exceeds the limit of %d", len(changes), maxChangesPerBatch)
	case len(in.ChangeBatch.Comment) > 256:
		return nil, invalidInput("1 validation error detected: Value at 'changeBatch.comment' failed to satisfy constraint: Member must have length less than or equal to 256")
	}
	for i, c := range changes {
		rs := c.ResourceRecordSet
		at := fmt.Sprintf("changeBatch.changes.%d.member", i+1)
		switch {
		case c.Action != "CREATE" && c.Action != "UPSERT" && c.Action != "DELETE":
			return nil, invalidInput("1 validation error detected: Value '%s' at '%s.action' failed to satisfy constraint: Member must satisfy enum value set: [CREATE, DELETE, UPSERT]", c.Action, at)
		case rs.Name == "":
			return nil, invalidInput("1 validation error detected: Value null at '%s.resourceRecordSet.name' failed to satisfy constraint: Member must not be null", at)
		case !knownRRType[rs.Type]:
			return nil, invalidInput("1 validation error detected: Value '%s' at '%s.resourceRecordSet.type' failed to satisfy constraint: Member must satisfy enum value set: [SOA, A, TXT, NS, CNAME, MX, NAPTR, PTR, SRV, SPF, AAAA, CAA, DS, TLSA, SSHFP, SVCB, HTTPS]", rs.Type, at)
		case rs.SetIdentifier != nil || rs.AliasTarget != nil || rs.Weight != nil || rs.Region != nil || rs.GeoLocation != nil ||
			rs.Failover != nil || rs.MultiValueAnswer != nil || rs.HealthCheckID != nil || rs.TrafficPolicyInstanceID != nil:
			return nil, invalidInput("cloudsim simulates simple routing only: %s has an alias, a set identifier, a routing policy or a health check", strings.TrimSuffix(rs.Name, "."))
		case rs.TTL == nil || len(rs.ResourceRecords) == 0:
			return nil, invalidInput("Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with [Action=%s, Name=%s, Type=%s, SetIdentifier=null]", c.Action, rs.Name, rs.Type)
		case *rs.TTL < 0 || *rs.TTL > 2147483647:
			return nil, invalidInput("1 validation error detected: Value '%d' at '%s.resourceRecordSet.tTL' failed to satisfy constraint: Member must have value between 0 and 2147483647", *rs.TTL, at)
		}
		for _, rr := range rs.ResourceRecords {
			if rr.Value == "" || len(rr.Value) > 4000 {
				return nil, invalidInput("1 validation error detected: a value at '%s.resourceRecordSet.resourceRecords' must have length between 1 and 4000", at)
			}
		}
	}
	return &in, nil
}

// Responses.

type xVPC struct {
	VPCRegion string `xml:"VPCRegion"`
	VPCId     string `xml:"VPCId"`
}

type xHostedZone struct {
	ID              string `xml:"Id"`
	Name            string `xml:"Name"`
	CallerReference string `xml:"CallerReference"`
	Config          struct {
		Comment     string `xml:"Comment,omitempty"`
		PrivateZone bool   `xml:"PrivateZone"`
	} `xml:"Config"`
	ResourceRecordSetCount int `xml:"ResourceRecordSetCount"`
}

func xZoneOf(z *hostedZone) xHostedZone {
	x := xHostedZone{ID: "/hostedzone/" + z.ID, Name: z.Name, CallerReference: z.CallerRef, ResourceRecordSetCount: len(z.Records)}
	x.Config.Comment, x.Config.PrivateZone = z.Comment, z.Private
	return x
}

type xChangeInfo struct {
	ID          string   `xml:"Id"`
	Status      string   `xml:"Status"`
	SubmittedAt *ec2Time `xml:"SubmittedAt"`
	Comment     string   `xml:"Comment,omitempty"`
}

func xChangeInfoOf(c *dnsChange) xChangeInfo {
	return xChangeInfo{ID: "/change/" + c.ID, Status: c.Status, SubmittedAt: ts(c.Submitted), Comment: c.Comment}
}

type xDelegationSet struct {
	NameServers []string `xml:"NameServers>NameServer"`
}

type xCreateHostedZoneResponse struct {
	XMLName       xml.Name        `xml:"CreateHostedZoneResponse"`
	Xmlns         string          `xml:"xmlns,attr"`
	HostedZone    xHostedZone     `xml:"HostedZone"`
	ChangeInfo    xChangeInfo     `xml:"ChangeInfo"`
	DelegationSet *xDelegationSet `xml:"DelegationSet,omitempty"`
	VPC           *xVPC           `xml:"VPC,omitempty"`
}

func (r *xCreateHostedZoneResponse) location() string { return r.HostedZone.ID }

type xGetHostedZoneResponse struct {
	XMLName       xml.Name        `xml:"GetHostedZoneResponse"`
	Xmlns         string          `xml:"xmlns,attr"`
	HostedZone    xHostedZone     `xml:"HostedZone"`
	DelegationSet *xDelegationSet `xml:"DelegationSet,omitempty"`
	VPCs          []xVPC          `xml:"VPCs>VPC,omitempty"`
}

type xDeleteHostedZoneResponse struct {
	XMLName    xml.Name    `xml:"DeleteHostedZoneResponse"`
	Xmlns      string      `xml:"xmlns,attr"`
	ChangeInfo xChangeInfo `xml:"ChangeInfo"`
}

type xGetHostedZoneCountResponse struct {
	XMLName         xml.Name `xml:"GetHostedZoneCountResponse"`
	Xmlns           string   `xml:"xmlns,attr"`
	HostedZoneCount int      `xml:"HostedZoneCount"`
}

type xListHostedZonesResponse struct {
	XMLName     xml.Name      `xml:"ListHostedZonesResponse"`
	Xmlns       string        `xml:"xmlns,attr"`
	HostedZones []xHostedZone `xml:"HostedZones>HostedZone"`
	Marker      string        `xml:"Marker,omitempty"`
	IsTruncated bool          `xml:"IsTruncated"`
	NextMarker  string        `xml:"NextMarker,omitempty"`
	MaxItems    int           `xml:"MaxItems"`
}

type xListHostedZonesByNameResponse struct {
	XMLName          xml.Name      `xml:"ListHostedZonesByNameResponse"`
	Xmlns            string        `xml:"xmlns,attr"`
	HostedZones      []xHostedZone `xml:"HostedZones>HostedZone"`
	DNSName          string        `xml:"DNSName,omitempty"`
	HostedZoneID     string        `xml:"HostedZoneId,omitempty"`
	IsTruncated      bool          `xml:"IsTruncated"`
	NextDNSName      string        `xml:"NextDNSName,omitempty"`
	NextHostedZoneID string        `xml:"NextHostedZoneId,omitempty"`
	MaxItems         int           `xml:"MaxItems"`
}

type xRRSet struct {
	Name            string `xml:"Name"`
	Type            string `xml:"Type"`
	TTL             int64  `xml:"TTL"`
	ResourceRecords []xRR  `xml:"ResourceRecords>ResourceRecord"`
}

type xRR struct {
	Value string `xml:"Value"`
}

func xRRSetOf(r *rrset) xRRSet {
	x := xRRSet{Name: r.Name, Type: r.Type, TTL: r.TTL}
	for _, v := range r.Values {
		x.ResourceRecords = append(x.ResourceRecords, xRR{v})
	}
	return x
}

type xListResourceRecordSetsResponse struct {
	XMLName            xml.Name `xml:"ListResourceRecordSetsResponse"`
	Xmlns              string   `xml:"xmlns,attr"`
	ResourceRecordSets []xRRSet `xml:"ResourceRecordSets>ResourceRecordSet"`
	IsTruncated        bool     `xml:"IsTruncated"`
	NextRecordName     string   `xml:"NextRecordName,omitempty"`
	NextRecordType     string   `xml:"NextRecordType,omitempty"`
	MaxItems           int      `xml:"MaxItems"`
}

type xChangeResourceRecordSetsResponse struct {
	XMLName    xml.Name    `xml:"ChangeResourceRecordSetsResponse"`
	Xmlns      string      `xml:"xmlns,attr"`
	ChangeInfo xChangeInfo `xml:"ChangeInfo"`
}

type xGetChangeResponse struct {
	XMLName    xml.Name    `xml:"GetChangeResponse"`
	Xmlns      string      `xml:"xmlns,attr"`
	ChangeInfo xChangeInfo `xml:"ChangeInfo"`
}

// xInvalidChangeBatch is Route 53's own error document for a refused change batch.
type xInvalidChangeBatch struct {
	XMLName   xml.Name `xml:"InvalidChangeBatch"`
	Xmlns     string   `xml:"xmlns,attr"`
	Messages  []string `xml:"Messages>Message"`
	RequestID string   `xml:"RequestId"`
}

type xR53Error struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type xR53ErrorResponse struct {
	XMLName   xml.Name  `xml:"ErrorResponse"`
	Xmlns     string    `xml:"xmlns,attr"`
	Error     xR53Error `xml:"Error"`
	RequestID string    `xml:"RequestId"`
}
