// Route 53's REST-XML protocol (API version 2013-04-01), routed by the path /2013-04-01/...:
// hosted zones (public, and private ones of the VPC), ChangeResourceRecordSets, GetChange and
// the listings. The zones, records and their propagation are the model of dns.go.

package cloudsim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

const route53Namespace = "https://route53.amazonaws.com/doc/2013-04-01/"

// Route 53's limits that cloudsim enforces.
const (
	maxChangesPerBatch = 1000
	maxRecordsListed   = 300
	maxZonesListed     = 100
	maxRoute53Body     = 256 << 10
)

func r53Err(status int, code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

func errNoSuchZone(id string) *apiError {
	return r53Err(404, "NoSuchHostedZone", "No hosted zone found with ID: %s", id)
}

// errInvalidChangeBatch carries the messages of a refused batch, written in Route 53's own
// <InvalidChangeBatch> document.
type errInvalidChangeBatch struct{ messages []string }

// serveRoute53 answers one Route 53 request.
func (s *Sim) serveRoute53(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	rest := strings.TrimPrefix(r.URL.Path, "/2013-04-01/")
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	var op string
	var handle func(now time.Time) (any, int, *apiError, *errInvalidChangeBatch)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRoute53Body+1))
	if err != nil || len(body) > maxRoute53Body {
		writeRoute53Error(w, reqID, r53Err(400, "InvalidInput", "the request body is too large or cannot be read"))
		return
	}
	q := r.URL.Query()
	switch {
	case len(parts) == 1 && parts[0] == "hostedzone" && r.Method == http.MethodPost:
		op = "CreateHostedZone"
		handle = func(now time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
			out, aerr := s.createHostedZone(body, now)
			return out, http.StatusCreated, aerr, nil
		}
	case len(parts) == 1 && parts[0] == "hostedzone" && r.Method == http.MethodGet:
		op = "ListHostedZones"
		handle = func(time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
			out, aerr := s.listHostedZones(q)
			return out, 200, aerr, nil
		}
	case len(parts) == 1 && parts[0] == "hostedzonesbyname" && r.Method == http.MethodGet:
		op = "ListHostedZonesByName"
		handle = func(time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
			out, aerr := s.listHostedZonesByName(q)
			return out, 200, aerr, nil
		}
	case len(parts) == 1 && parts[0] == "hostedzonecount" && r.Method == http.MethodGet:
		op = "GetHostedZoneCount"
		handle = func(time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
			return &xGetHostedZoneCountResponse{Xmlns: route53Namespace, HostedZoneCount: len(s.st.Zones)}, 200, nil, nil
		}
	case len(parts) == 2 && parts[0] == "hostedzone" && r.Method == http.MethodGet:
		op = "GetHostedZone"
		handle = func(time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
			out, aerr := s.getHostedZone(parts[1])
			return out, 200, aerr, nil
		}
	case len(parts) == 2 && parts[0] == "hostedzone" && r.Method == http.MethodDelete:
		op = "DeleteHostedZone"
		handle = func(now time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
			out, aerr := s.deleteHostedZone(parts[1], now)
			return out, 200, aerr, nil
		}
	case len(parts) == 3 && parts[0] == "hostedzone" && parts[2] == "rrset" && r.Method == http.MethodPost:
		op = "ChangeResourceRecordSets"
		handle = func(now time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
			return s.changeResourceRecordSets(parts[1], body, now)
		}
	case len(parts) == 3 && parts[0] == "hostedzone" && parts[2] == "rrset" && r.Method == http.MethodGet:
		op = "ListResourceRecordSets"
		handle = func(time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
			out, aerr := s.listResourceRecordSets(parts[1], q)
			return out, 200, aerr, nil
		}
	case len(parts) == 2 && parts[0] == "change" && r.Method == http.MethodGet:
		op = "GetChange"
		handle = func(time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
			c := s.st.DNSChanges[parts[1]]
			if c == nil {
				return nil, 0, r53Err(404, "NoSuchChange", "A change with the specified change ID does not exist: %s", parts[1]), nil
			}
			return &xGetChangeResponse{Xmlns: route53Namespace, ChangeInfo: xChangeInfoOf(c)}, 200, nil, nil
		}
	default:
		writeRoute53Error(w, reqID, r53Err(400, "InvalidAction", "cloudsim does not simulate Route 53's %s %s", r.Method, r.URL.Path))
		return
	}
	now := s.begin()
	if aerr := s.throttled(op, "Throttling", now); aerr != nil {
		s.mu.Unlock()
		writeRoute53Error(w, reqID, aerr)
		return
	}
	resp, status, aerr, batchErr := handle(now)
	s.reevaluate(now)
	s.mu.Unlock()
	switch {
	case batchErr != nil:
		s.writeXML(w, reqID, 400, &xInvalidChangeBatch{Xmlns: route53Namespace, Messages: batchErr.messages, RequestID: reqID})
	case aerr != nil:
		writeRoute53Error(w, reqID, aerr)
	default:
		if loc, ok := resp.(interface{ location() string }); ok {
			w.Header().Set("Location", "https://route53.amazonaws.com/2013-04-01"+loc.location())
		}
		s.writeXML(w, reqID, status, resp)
	}
}

func (s *Sim) writeXML(w http.ResponseWriter, reqID string, status int, v any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		s.log.Error("cloudsim: encode route53 response", "err", err)
		writeRoute53Error(w, reqID, r53Err(500, "InternalError", "internal error"))
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeRoute53Error(w http.ResponseWriter, reqID string, e *apiError) {
	kind := "Sender"
	if e.Status >= 500 {
		kind = "Receiver"
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(&xR53ErrorResponse{Xmlns: route53Namespace,
		Error: xR53Error{Type: kind, Code: e.Code, Message: e.Message}, RequestID: reqID})
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(e.Status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Sim) createHostedZone(body []byte, now time.Time) (any, *apiError) {
	in, aerr := parseCreateHostedZone(body)
	if aerr != nil {
		return nil, aerr
	}
	name, ok := normalizeName(in.Name)
	if !ok || strings.HasPrefix(name, "*.") {
		return nil, r53Err(400, "InvalidDomainName", "%s is not a valid domain name", in.Name)
	}
	if id, used := s.st.CallerRefs[in.CallerReference]; used {
		return nil, r53Err(409, "HostedZoneAlreadyExists", "A hosted zone has already been created with the specified caller reference (zone %s).", id)
	}
	private := in.VPC != nil
	if in.HostedZoneConfig != nil && in.HostedZoneConfig.PrivateZone != nil && *in.HostedZoneConfig.PrivateZone && !private {
		return nil, r53Err(400, "InvalidInput", "Invalid request: a private hosted zone needs a VPC (VPCId and VPCRegion)")
	}
	var vpc zoneVPC
	if private {
		vpc = zoneVPC{Region: in.VPC.VPCRegion, ID: in.VPC.VPCId}
		if vpc.ID != VPCID || vpc.Region != s.cfg.Region {
			return nil, r53Err(400, "InvalidVPCId", "The VPC ID %s in %s either isn't a valid ID or the current account is not authorized to access this VPC (cloudsim has one VPC: %s in %s).", vpc.ID, vpc.Region, VPCID, s.cfg.Region)
		}
		for _, z := range s.st.Zones {
			if z.Private && z.Name == name && slices.Contains(z.VPCs, vpc) {
				return nil, r53Err(400, "ConflictingDomainExists", "A hosted zone named %s is already associated with %s (zone %s).", name, vpc.ID, z.ID)
			}
		}
	}
	z := &hostedZone{ID: s.st.route53ID("Z"), Name: name, CallerRef: in.CallerReference, Private: private, Created: now}
	if in.HostedZoneConfig != nil {
		z.Comment = in.HostedZoneConfig.Comment
	}
	if private {
		z.VPCs = []zoneVPC{vpc}
	}
	ns := nameServers(z.ID)
	z.Records = []*rrset{
		{Name: name, Type: "NS", TTL: nsTTL, Values: ns},
		{Name: name, Type: "SOA", TTL: soaTTL, Values: []string{fmt.Sprintf(soaTemplate, ns[0])}},
	}
	c := s.newDNSChange(z, "", []rrChange{{Action: "CREATE", Set: *z.Records[0]}, {Action: "CREATE", Set: *z.Records[1]}}, now)
	z.ChangeID = c.ID
	s.st.Zones[z.ID] = z
	s.st.CallerRefs[in.CallerReference] = z.ID
	kind := "public"
	if private {
		kind = "private (" + vpc.ID + ")"
	}
	s.event(now, "route53.zone.created", z.ID, "hosted zone %s %s created: %s", z.ID, name, kind)
	s.markDirty()
	out := &xCreateHostedZoneResponse{Xmlns: route53Namespace, HostedZone: xZoneOf(z), ChangeInfo: xChangeInfoOf(c)}
	if private {
		out.VPC = &xVPC{VPCRegion: vpc.Region, VPCId: vpc.ID}
	} else {
		out.DelegationSet = &xDelegationSet{NameServers: ns}
	}
	return out, nil
}

// nameServers are the four Route 53 name servers of a zone, as its delegation set names them.
func nameServers(zoneID string) []string {
	n := 0
	for _, c := range zoneID {
		n = n*31 + int(c)
	}
	n &= 0x7fffffff
	return []string{
		fmt.Sprintf("ns-%d.awsdns-%02d.com.", n%512, n%64),
		fmt.Sprintf("ns-%d.awsdns-%02d.net.", 512+n%512, n%64),
		fmt.Sprintf("ns-%d.awsdns-%02d.org.", 1024+n%512, n%64),
		fmt.Sprintf("ns-%d.awsdns-%02d.co.uk.", 1536+n%512, n%64),
	}
}

// zoneByID finds a zone by its id, with or without the /hostedzone/ prefix.
func (s *Sim) zoneByID(id string) (*hostedZone, *apiError) {
	z := s.st.Zones[strings.TrimPrefix(id, "/hostedzone/")]
	if z == nil {
		return nil, errNoSuchZone(id)
	}
	return z, nil
}

func (s *Sim) getHostedZone(id string) (any, *apiError) {
	z, aerr := s.zoneByID(id)
	if aerr != nil {
		return nil, aerr
	}
	out := &xGetHostedZoneResponse{Xmlns: route53Namespace, HostedZone: xZoneOf(z)}
	if z.Private {
		for _, v := range z.VPCs {
			out.VPCs = append(out.VPCs, xVPC{VPCRegion: v.Region, VPCId: v.ID})
		}
	} else {
		out.DelegationSet = &xDelegationSet{NameServers: nameServers(z.ID)}
	}
	return out, nil
}

func (s *Sim) deleteHostedZone(id string, now time.Time) (any, *apiError) {
	z, aerr := s.zoneByID(id)
	if aerr != nil {
		return nil, aerr
	}
	for _, r := range z.Records {
		if !(r.Name == z.Name && (r.Type == "SOA" || r.Type == "NS")) {
			return nil, r53Err(400, "HostedZoneNotEmpty", "The specified hosted zone contains non-required resource record sets and so cannot be deleted.")
		}
	}
	c := s.newDNSChange(z, "", nil, now)
	delete(s.st.Zones, z.ID)
	s.event(now, "route53.zone.deleted", z.ID, "hosted zone %s %s deleted", z.ID, z.Name)
	s.markDirty()
	return &xDeleteHostedZoneResponse{Xmlns: route53Namespace, ChangeInfo: xChangeInfoOf(c)}, nil
}

// maxItems reads the maxitems parameter: def when absent, at most limit.
func maxItems(q map[string][]string, def int) (int, *apiError) {
	v := firstOf(q, "maxitems")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, r53Err(400, "InvalidInput", "maxitems must be a positive number, got %q", v)
	}
	return min(n, def), nil
}

func firstOf(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *Sim) listHostedZones(q map[string][]string) (any, *apiError) {
	limit, aerr := maxItems(q, maxZonesListed)
	if aerr != nil {
		return nil, aerr
	}
	if t := firstOf(q, "hostedzonetype"); t != "" && t != "PrivateHostedZone" {
		return nil, r53Err(400, "InvalidInput", "hostedzonetype must be PrivateHostedZone")
	}
	zones := s.sortedZones(func(a, b *hostedZone) int { return a.Created.Compare(b.Created)*2 + strings.Compare(a.ID, b.ID) })
	if firstOf(q, "hostedzonetype") != "" {
		zones = slices.DeleteFunc(zones, func(z *hostedZone) bool { return !z.Private })
	}
	marker := firstOf(q, "marker")
	start := 0
	if marker != "" {
		start = slices.IndexFunc(zones, func(z *hostedZone) bool { return z.ID == marker })
		if start < 0 {
			return nil, r53Err(400, "InvalidInput", "marker %q is not a hosted zone of this listing", marker)
		}
	}
	out := &xListHostedZonesResponse{Xmlns: route53Namespace, Marker: marker, MaxItems: limit, HostedZones: []xHostedZone{}}
	for i := start; i < len(zones); i++ {
		if len(out.HostedZones) == limit {
			out.IsTruncated, out.NextMarker = true, zones[i].ID
			break
		}
		out.HostedZones = append(out.HostedZones, xZoneOf(zones[i]))
	}
	return out, nil
}

func (s *Sim) sortedZones(cmp func(a, b *hostedZone) int) []*hostedZone {
	var zones []*hostedZone
	for _, id := range sortedKeys(s.st.Zones) {
		zones = append(zones, s.st.Zones[id])
	}
	slices.SortStableFunc(zones, cmp)
	return zones
}

func (s *Sim) listHostedZonesByName(q map[string][]string) (any, *apiError) {
	limit, aerr := maxItems(q, maxZonesListed)
	if aerr != nil {
		return nil, aerr
	}
	dnsName, zoneID := firstOf(q, "dnsname"), firstOf(q, "hostedzoneid")
	if zoneID != "" && dnsName == "" {
		return nil, r53Err(400, "InvalidInput", "hostedzoneid needs dnsname")
	}
	start := ""
	if dnsName != "" {
		n, ok := normalizeName(dnsName)
		if !ok {
			return nil, r53Err(400, "InvalidDomainName", "%s is not a valid domain name", dnsName)
		}
		start = reversedLabels(n)
	}
	zones := s.sortedZones(func(a, b *hostedZone) int {
		if c := strings.Compare(reversedLabels(a.Name), reversedLabels(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	out := &xListHostedZonesByNameResponse{Xmlns: route53Namespace, DNSName: dnsName, HostedZoneID: zoneID, MaxItems: limit, HostedZones: []xHostedZone{}}
	for _, z := range zones {
		rn := reversedLabels(z.Name)
		if rn < start || (rn == start && zoneID != "" && z.ID < zoneID) {
			continue
		}
		if len(out.HostedZones) == limit {
			out.IsTruncated, out.NextDNSName, out.NextHostedZoneID = true, z.Name, z.ID
			break
		}
		out.HostedZones = append(out.HostedZones, xZoneOf(z))
	}
	return out, nil
}

func (s *Sim) listResourceRecordSets(id string, q map[string][]string) (any, *apiError) {
	z, aerr := s.zoneByID(id)
	if aerr != nil {
		return nil, aerr
	}
	limit, aerr := maxItems(q, maxRecordsListed)
	if aerr != nil {
		return nil, aerr
	}
	name, typ := firstOf(q, "name"), firstOf(q, "type")
	if firstOf(q, "identifier") != "" {
		return nil, r53Err(400, "InvalidInput", "cloudsim simulates simple routing only: record sets have no identifier")
	}
	if typ != "" && name == "" {
		return nil, r53Err(400, "InvalidInput", "The input is not valid: you must specify name when you specify type")
	}
	if typ != "" && !knownRRType[typ] {
		return nil, r53Err(400, "InvalidInput", "%s is not a valid record type", typ)
	}
	records := slices.Clone(z.Records)
	sortRecords(records)
	startName := ""
	if name != "" {
		n, ok := normalizeName(name)
		if !ok {
			return nil, r53Err(400, "InvalidInput", "%s is not a valid DNS name", name)
		}
		startName = reversedLabels(n)
	}
	out := &xListResourceRecordSetsResponse{Xmlns: route53Namespace, MaxItems: limit, ResourceRecordSets: []xRRSet{}}
	for _, r := range records {
		rn := reversedLabels(r.Name)
		if rn < startName || (rn == startName && typ != "" && r.Type < typ) {
			continue
		}
		if len(out.ResourceRecordSets) == limit {
			out.IsTruncated, out.NextRecordName, out.NextRecordType = true, r.Name, r.Type
			break
		}
		out.ResourceRecordSets = append(out.ResourceRecordSets, xRRSetOf(r))
	}
	return out, nil
}

func (s *Sim) changeResourceRecordSets(id string, body []byte, now time.Time) (any, int, *apiError, *errInvalidChangeBatch) {
	z, aerr := s.zoneByID(id)
	if aerr != nil {
		return nil, 0, aerr, nil
	}
	batch, aerr := parseChangeBatch(body)
	if aerr != nil {
		return nil, 0, aerr, nil
	}
	changes, msgs := validateChanges(z, batch)
	if len(msgs) > 0 {
		return nil, 0, nil, &errInvalidChangeBatch{messages: msgs}
	}
	z.Records = applyChanges(z.Records, changes)
	c := s.newDNSChange(z, batch.ChangeBatch.Comment, changes, now)
	var what []string
	for _, ch := range changes {
		what = append(what, fmt.Sprintf("%s %s %s %v", ch.Action, ch.Set.Type, ch.Set.Name, ch.Set.Values))
	}
	s.event(now, "route53.change.submitted", z.ID, "change %s of zone %s: %s (INSYNC at %s)", c.ID, z.Name, strings.Join(what, "; "), c.InSyncAt.Format(time.RFC3339))
	s.markDirty()
	return &xChangeResourceRecordSetsResponse{Xmlns: route53Namespace, ChangeInfo: xChangeInfoOf(c)}, 200, nil, nil
}

// knownRRType is every record type Route 53 takes.
var knownRRType = map[string]bool{"A": true, "AAAA": true, "CAA": true, "CNAME": true, "DS": true, "HTTPS": true, "MX": true,
	"NAPTR": true, "NS": true, "PTR": true, "SOA": true, "SPF": true, "SRV": true, "SSHFP": true, "SVCB": true, "TLSA": true, "TXT": true}

// validateChanges checks a batch against the zone as Route 53 does, all or nothing: it returns
// the changes normalized, or the messages of an InvalidChangeBatch.
func validateChanges(z *hostedZone, batch *xChangeResourceRecordSetsRequest) ([]rrChange, []string) {
	var out []rrChange
	var msgs []string
	seen := map[string]bool{}
	for _, c := range batch.ChangeBatch.Changes {
		set := rrset{Name: c.ResourceRecordSet.Name, Type: c.ResourceRecordSet.Type, TTL: *c.ResourceRecordSet.TTL}
		for _, rr := range c.ResourceRecordSet.ResourceRecords {
			set.Values = append(set.Values, rr.Value)
		}
		name, ok := normalizeName(set.Name)
		if !ok {
			msgs = append(msgs, fmt.Sprintf("Invalid Resource Record: FATAL problem: DomainLabelEmpty or invalid name encountered with '%s'", set.Name))
			continue
		}
		set.Name = name
		key := set.Type + " " + name
		switch {
		case !inZone(name, z.Name):
			msgs = append(msgs, fmt.Sprintf("RRSet with DNS name %s is not permitted in zone %s", name, z.Name))
			continue
		case seen[key]:
			msgs = append(msgs, fmt.Sprintf("The request contains an invalid set of changes for a resource record set '%s'", key))
			continue
		}
		seen[key] = true
		if m := validateValues(set); m != "" {
			msgs = append(msgs, m)
			continue
		}
		cur := slices.IndexFunc(z.Records, func(r *rrset) bool { return r.Name == name && r.Type == set.Type })
		desc := fmt.Sprintf("[name='%s', type='%s']", name, set.Type)
		switch c.Action {
		case "CREATE":
			if cur >= 0 {
				msgs = append(msgs, fmt.Sprintf("Tried to create resource record set %s but it already exists", desc))
				continue
			}
		case "DELETE":
			if cur < 0 {
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but it was not found", desc))
				continue
			}
			if r := z.Records[cur]; r.TTL != set.TTL || !slices.Equal(r.Values, set.Values) {
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but the values provided do not match the current values", desc))
				continue
			}
			if name == z.Name && (set.Type == "SOA" || set.Type == "NS") {
				msgs = append(msgs, fmt.Sprintf("A HostedZone must contain at least one %s record for the zone itself.", set.Type))
				continue
			}
		}
		if c.Action != "DELETE" {
			if set.Type == "SOA" && (name != z.Name || cur < 0) {
				msgs = append(msgs, fmt.Sprintf("RRSet of type SOA with DNS name %s is not permitted: a zone has one SOA, at its apex", name))
				continue
			}
			for _, r := range z.Records {
				if r.Name == name && r.Type != set.Type && (r.Type == "CNAME" || set.Type == "CNAME") && !pendingDelete(batch, r) {
					msgs = append(msgs, fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted because a conflicting RRSet of type %s with the same DNS name already exists in zone %s", set.Type, name, r.Type, z.Name))
				}
			}
			if set.Type == "CNAME" && name == z.Name {
				msgs = append(msgs, fmt.Sprintf("RRSet of type CNAME with DNS name %s is not permitted at apex in zone %s", name, z.Name))
			}
		}
		out = append(out, rrChange{Action: c.Action, Set: set})
	}
	return out, msgs
}

// pendingDelete is whether the batch deletes r, which then does not conflict.
func pendingDelete(batch *xChangeResourceRecordSetsRequest, r *rrset) bool {
	for _, c := range batch.ChangeBatch.Changes {
		n, _ := normalizeName(c.ResourceRecordSet.Name)
		if c.Action == "DELETE" && n == r.Name && c.ResourceRecordSet.Type == r.Type {
			return true
		}
	}
	return false
}

// validateValues checks a record set's values by its type, with Route 53's messages.
func validateValues(set rrset) string {
	bad := func(what, v string) string {
		return fmt.Sprintf("[Invalid Resource Record: 'FATAL problem: %s encountered with '%s'']", what, v)
	}
	if set.Type == "CNAME" && len(set.Values) > 1 {
		return fmt.Sprintf("RRSet of type CNAME with DNS name %s contains more than one value", set.Name)
	}
	for _, v := range set.Values {
		switch set.Type {
		case "A":
			if !validIPv4(v) {
				return bad("ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address)", v)
			}
		case "CNAME", "NS", "PTR":
			if _, ok := normalizeName(v); !ok {
				return bad("DomainLabelEmpty (Domain label is empty)", v)
			}
		case "TXT", "SPF":
			if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
				return bad("InvalidCharacterString (Value should be enclosed in quotation marks)", v)
			}
		}
	}
	return ""
}
