package cloudsim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

const ownerID = "123456789012"

// apiError is an AWS error: EC2 writes it as XML, SSM as JSON.
type apiError struct {
	Code    string
	Message string
	Status  int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errInvalidParameter(msg string) *apiError {
	return &apiError{Code: "InvalidParameterValue", Message: msg, Status: 400}
}

func errMissing(name string) *apiError {
	return &apiError{Code: "MissingParameter", Message: fmt.Sprintf("The request must contain the parameter %s", name), Status: 400}
}

func errCode(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), Status: 400}
}

type ec2Action func(s *Sim, q *query, now time.Time) (any, *apiError)

// ec2Actions is every EC2 action cloudsim implements; anything else is InvalidAction.
var ec2Actions = map[string]ec2Action{
	"DescribeAvailabilityZones":    (*Sim).describeAvailabilityZones,
	"RunInstances":                 (*Sim).runInstances,
	"TerminateInstances":           (*Sim).terminateInstances,
	"StopInstances":                (*Sim).stopInstances,
	"StartInstances":               (*Sim).startInstances,
	"DescribeInstances":            (*Sim).describeInstances,
	"DescribeInstanceStatus":       (*Sim).describeInstanceStatus,
	"CreateVolume":                 (*Sim).createVolume,
	"DeleteVolume":                 (*Sim).deleteVolume,
	"AttachVolume":                 (*Sim).attachVolume,
	"DetachVolume":                 (*Sim).detachVolume,
	"DescribeVolumes":              (*Sim).describeVolumes,
	"ModifyVolume":                 (*Sim).modifyVolume,
	"DescribeVolumesModifications": (*Sim).describeVolumesModifications,
	"CreateSnapshot":               (*Sim).createSnapshot,
	"DescribeSnapshots":            (*Sim).describeSnapshots,
	"CopySnapshot":                 (*Sim).copySnapshot,
	"DeleteSnapshot":               (*Sim).deleteSnapshot,
	"CreateTags":                   (*Sim).createTags,
	"DeleteTags":                   (*Sim).deleteTags,
	"DescribeTags":                 (*Sim).describeTags,
}

// serveEC2 answers one EC2 Query request.
func (s *Sim) serveEC2(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	var body []byte
	switch r.Method {
	case http.MethodPost:
		b, err := io.ReadAll(io.LimitReader(r.Body, maxQueryBody+1))
		if err != nil {
			writeEC2Error(w, reqID, errInvalidParameter("cannot read request body"))
			return
		}
		body = b
	case http.MethodGet:
		body = []byte(r.URL.RawQuery)
	default:
		writeEC2Error(w, reqID, &apiError{Code: "InvalidAction", Message: "EC2 Query requests are POST or GET", Status: 400})
		return
	}
	q, aerr := parseQuery(body)
	if aerr != nil {
		writeEC2Error(w, reqID, aerr)
		return
	}
	act, ok := ec2Actions[q.Action]
	if !ok {
		writeEC2Error(w, reqID, &apiError{Code: "InvalidAction", Message: fmt.Sprintf("The action %s is not valid for this web service.", q.Action), Status: 400})
		return
	}
	if dry, _ := q.bool("DryRun"); dry {
		writeEC2Error(w, reqID, &apiError{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", Status: 412})
		return
	}
	now := s.begin()
	if aerr := s.throttled(q.Action, "RequestLimitExceeded", now); aerr != nil {
		s.mu.Unlock()
		writeEC2Error(w, reqID, aerr)
		return
	}
	resp, aerr := act(s, q, now)
	s.advanceDRBD(now, now) // replication links follow what the action changed, at once
	s.mu.Unlock()
	if aerr != nil {
		s.log.Debug("cloudsim ec2 error", "action", q.Action, "code", aerr.Code, "msg", aerr.Message)
		writeEC2Error(w, reqID, aerr)
		return
	}
	if rs, ok := resp.(interface{ setRequestID(string) }); ok {
		rs.setRequestID(reqID)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	start := xml.StartElement{Name: xml.Name{Local: q.Action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ec2Namespace}}}
	if err := enc.EncodeElement(resp, start); err != nil {
		s.log.Error("cloudsim: encode response", "action", q.Action, "err", err)
		writeEC2Error(w, reqID, &apiError{Code: "InternalError", Message: "An internal error has occurred", Status: 500})
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", reqID)
	_, _ = w.Write(buf.Bytes())
}

func writeEC2Error(w http.ResponseWriter, reqID string, e *apiError) {
	out, _ := xml.Marshal(xErrorResponse{Errors: []xError{{Code: e.Code, Message: e.Message}}, RequestID: reqID})
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", reqID)
	status := e.Status
	if status == 0 {
		status = 400
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

// ---- lookups -----------------------------------------------------------------------------

// byID looks up a resource as EC2 does: a malformed id and an unknown one are different errors.
func byID[T any](m map[string]*T, id, prefix, kind, notFound, notFoundMsg string) (*T, *apiError) {
	if !strings.HasPrefix(id, prefix) {
		return nil, errCode(kind+".Malformed", "Invalid id: \"%s\"", id)
	}
	r, ok := m[id]
	if !ok {
		return nil, errCode(notFound, notFoundMsg, id)
	}
	return r, nil
}

func (s *Sim) instanceByID(id string) (*instance, *apiError) {
	return byID(s.st.Instances, id, "i-", "InvalidInstanceID", "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist")
}

func (s *Sim) volumeByID(id string) (*volume, *apiError) {
	return byID(s.st.Volumes, id, "vol-", "InvalidVolumeID", "InvalidVolume.NotFound", "The volume '%s' does not exist.")
}

func (s *Sim) snapshotByID(id string) (*snapshot, *apiError) {
	return byID(s.st.Snapshots, id, "snap-", "InvalidSnapshotID", "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.")
}

func (s *Sim) checkZone(z string) *apiError {
	if !s.zone[z] {
		return errInvalidParameter(fmt.Sprintf("Invalid availability zone: [%s]", z))
	}
	return nil
}

// clientToken looks up an earlier call with the same token: found returns its resources, a
// different request with the same token is IdempotentParameterMismatch.
func (s *Sim) clientToken(q *query) (resources []string, found bool, aerr *apiError) {
	tok := q.get("ClientToken")
	if tok == "" {
		return nil, false, nil
	}
	if len(tok) > 64 {
		return nil, false, errInvalidParameter("ClientToken must be at most 64 characters")
	}
	prev, ok := s.st.Tokens[q.Action+"/"+tok]
	if !ok {
		return nil, false, nil
	}
	if prev.ParamHash != q.paramHash() {
		return nil, false, errCode("IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
	}
	return prev.Resources, true, nil
}

func (s *Sim) rememberToken(q *query, resources []string) {
	if tok := q.get("ClientToken"); tok != "" {
		s.st.Tokens[q.Action+"/"+tok] = &clientTok{Action: q.Action, ParamHash: q.paramHash(), Resources: resources}
	}
}

// ---- availability zones --------------------------------------------------------------------

func (s *Sim) describeAvailabilityZones(q *query, now time.Time) (any, *apiError) {
	names, aerr := q.list("ZoneName")
	if aerr != nil {
		return nil, aerr
	}
	for _, n := range names {
		if err := s.checkZone(n); err != nil {
			return nil, err
		}
	}
	fs, aerr := q.filters()
	if aerr != nil {
		return nil, aerr
	}
	resp := &describeZonesResponse{}
	for i, z := range zoneNames(s.cfg.Region) {
		if len(names) > 0 && !slices.Contains(names, z) {
			continue
		}
		state, msgs := "available", []xZoneMessage(nil)
		if s.zoneDown(z) {
			state, msgs = "impaired", []xZoneMessage{{Message: "This Availability Zone is experiencing a service disruption."}}
		}
		zid := fmt.Sprintf("use1-az%d", i+1)
		ok, aerr := matchFilters(fs, func(name string) ([]string, bool) {
			switch name {
			case "zone-name":
				return []string{z}, true
			case "zone-id":
				return []string{zid}, true
			case "state":
				return []string{state}, true
			case "region-name":
				return []string{s.cfg.Region}, true
			case "zone-type":
				return []string{"availability-zone"}, true
			}
			return nil, false
		})
		if aerr != nil {
			return nil, aerr
		}
		if ok {
			resp.Zones = append(resp.Zones, xZone{ZoneName: z, ZoneID: zid, ZoneState: state, RegionName: s.cfg.Region,
				ZoneType: "availability-zone", OptInStatus: "opt-in-not-required", GroupName: s.cfg.Region, NetworkGroup: s.cfg.Region, Messages: msgs})
		}
	}
	return resp, nil
}

// ---- instances -----------------------------------------------------------------------------

const maxRunCount = 20

func (s *Sim) runInstances(q *query, now time.Time) (any, *apiError) {
	if ids, found, aerr := s.clientToken(q); aerr != nil {
		return nil, aerr
	} else if found {
		return s.reservationResponse(ids), nil
	}
	image := q.get("ImageId")
	if image == "" {
		return nil, errMissing("ImageId")
	}
	minCount, aerr := q.int32("MinCount", 0)
	if aerr != nil {
		return nil, aerr
	}
	maxCount, aerr := q.int32("MaxCount", 0)
	if aerr != nil {
		return nil, aerr
	}
	if minCount < 1 || maxCount < minCount {
		return nil, errInvalidParameter("MinCount must be at least 1 and MaxCount at least MinCount")
	}
	if maxCount > maxRunCount {
		if minCount > maxRunCount {
			return nil, errCode("InstanceLimitExceeded", "You have requested more instances (%d) than your current instance limit of %d allows", minCount, maxRunCount)
		}
		maxCount = maxRunCount
	}
	itype := q.get("InstanceType")
	if itype == "" {
		itype = "m1.small"
	}
	zone := q.get("Placement.AvailabilityZone")
	if zone == "" {
		zone = zoneNames(s.cfg.Region)[0]
	}
	if aerr := s.checkZone(zone); aerr != nil {
		return nil, aerr
	}
	if s.zoneDown(zone) {
		return nil, errCode("InsufficientInstanceCapacity", "We currently do not have sufficient %s capacity in the Availability Zone you requested (%s).", itype, zone)
	}
	specs, aerr := q.tagSpecs("instance", "volume")
	if aerr != nil {
		return nil, aerr
	}
	bdms, aerr := parseBlockDevices(q)
	if aerr != nil {
		return nil, aerr
	}
	for i, b := range bdms {
		if b.snapshotID != "" {
			sn, aerr := s.snapshotByID(b.snapshotID)
			if aerr != nil {
				return nil, aerr
			}
			if bdms[i].size == 0 {
				bdms[i].size = sn.VolumeSize
			}
		}
		if bdms[i].size == 0 {
			return nil, errInvalidParameter(fmt.Sprintf("The volume size of %s must be given", b.device))
		}
	}
	resID := s.st.newID("r")
	var ids []string
	for n := int32(0); n < maxCount; n++ {
		in := &instance{
			ID: s.st.newID("i"), ReservationID: resID, ImageID: image, Type: itype, Zone: zone,
			LaunchTime: now, State: statePending, StateSince: now, TransitionAt: now.Add(bootTime),
			ClientToken: q.get("ClientToken"), Tags: tagsFor(specs, "instance"),
		}
		in.PrivateIP = s.privateIP(zone)
		root := s.newVolume(zone, 8, "gp3", "", now, tagsFor(specs, "volume"))
		root.Root, root.DeleteOnTerm, root.State = true, true, "in-use"
		root.Attachment = &attach{InstanceID: in.ID, Device: "/dev/xvda", State: "attached", Since: now, ReadyAt: now}
		in.RootVolume = root.ID
		for _, b := range bdms {
			v := s.newVolume(zone, b.size, b.volumeType, b.snapshotID, now, tagsFor(specs, "volume"))
			v.DeleteOnTerm, v.State = b.deleteOnTermination, "in-use"
			v.Attachment = &attach{InstanceID: in.ID, Device: b.device, State: "attached", Since: now, ReadyAt: now}
		}
		s.st.Instances[in.ID] = in
		s.st.Hosts[in.ID] = newHost(in)
		ids = append(ids, in.ID)
		s.event(now, "instance.launched", in.ID, "instance %s (%s, %s) launched in %s", in.ID, itype, image, zone)
	}
	s.rememberToken(q, ids)
	return s.reservationResponse(ids), nil
}

type blockDevice struct {
	device              string
	size                int32
	volumeType          string
	snapshotID          string
	deleteOnTermination bool
}

func parseBlockDevices(q *query) ([]blockDevice, *apiError) {
	idx, aerr := q.indexes("BlockDeviceMapping")
	if aerr != nil {
		return nil, aerr
	}
	var out []blockDevice
	for _, n := range idx {
		p := "BlockDeviceMapping." + strconv.Itoa(n)
		b := blockDevice{device: q.get(p + ".DeviceName"), volumeType: q.get(p + ".Ebs.VolumeType"), snapshotID: q.get(p + ".Ebs.SnapshotId"), deleteOnTermination: true}
		if b.device == "" {
			return nil, errMissing(p + ".DeviceName")
		}
		if b.device == "/dev/xvda" || b.device == "/dev/sda1" {
			continue // the root device: cloudsim always gives it an 8 GiB boot volume
		}
		if q.get(p+".Ebs.VolumeSize") == "" && b.snapshotID == "" && q.get(p+".VirtualName") != "" {
			continue // an instance-store mapping: nothing to create
		}
		var err *apiError
		if b.size, err = q.int32(p+".Ebs.VolumeSize", 0); err != nil {
			return nil, err
		}
		if b.size < 0 || b.size > 16384 {
			return nil, errInvalidParameter(fmt.Sprintf("Volume of %d GiB is out of range (1-16384)", b.size))
		}
		if q.get(p+".Ebs.DeleteOnTermination") != "" {
			if b.deleteOnTermination, err = q.bool(p + ".Ebs.DeleteOnTermination"); err != nil {
				return nil, err
			}
		}
		if b.volumeType == "" {
			b.volumeType = "gp2"
		}
		out = append(out, b)
	}
	return out, nil
}

func (s *Sim) privateIP(zone string) string {
	zi := 0
	for i, z := range zoneNames(s.cfg.Region) {
		if z == zone {
			zi = i
		}
	}
	n := int(s.st.Counter)
	return fmt.Sprintf("10.0.%d.%d", zi*64+(n/250)%64, n%250+4)
}

func (s *Sim) reservationResponse(ids []string) *runInstancesResponse {
	resp := &runInstancesResponse{OwnerID: ownerID}
	for _, id := range ids {
		in, ok := s.st.Instances[id]
		if !ok {
			continue
		}
		resp.ReservationID = in.ReservationID
		resp.Instances = append(resp.Instances, s.xInstance(in))
	}
	return resp
}

func (s *Sim) xInstance(in *instance) xInstance {
	x := xInstance{
		InstanceID: in.ID, ImageID: in.ImageID, InstanceState: xState{stateCodes[in.State], in.State},
		PrivateDNSName: in.hostname() + ".ec2.internal", InstanceType: in.Type, LaunchTime: ts(in.LaunchTime),
		Placement: xPlacement{AvailabilityZone: in.Zone, Tenancy: "default"}, PrivateIPAddress: in.PrivateIP,
		Architecture: "x86_64", RootDeviceType: "ebs", RootDeviceName: "/dev/xvda", VirtualizationType: "hvm",
		ClientToken: in.ClientToken, TagSet: xTags(in.Tags), Hypervisor: "xen",
	}
	if in.State == stateTerminated {
		x.PrivateDNSName, x.PrivateIPAddress = "", ""
	}
	if in.StateReason != "" {
		x.StateReason = &xStateReason{Code: in.StateReason, Message: in.StateReason}
		x.Reason = in.StateReason
	}
	// The boot volume first, then the others in id order, as a stable listing.
	vids := sortedKeys(s.st.Volumes)
	sort.SliceStable(vids, func(i, j int) bool { return vids[i] == in.RootVolume && vids[j] != in.RootVolume })
	for _, vid := range vids {
		v := s.st.Volumes[vid]
		if a := v.Attachment; a != nil && a.InstanceID == in.ID {
			x.BlockDeviceMapping = append(x.BlockDeviceMapping, xInstanceBlockDevice{DeviceName: a.Device,
				Ebs: xEbsInstanceBlockDevice{VolumeID: v.ID, Status: a.State, AttachTime: ts(a.Since), DeleteOnTermination: v.DeleteOnTerm}})
		}
	}
	return x
}

func (s *Sim) instanceFilterValues(in *instance, name string) ([]string, bool) {
	switch name {
	case "instance-id":
		return []string{in.ID}, true
	case "instance-state-name":
		return []string{in.State}, true
	case "instance-state-code":
		return []string{strconv.Itoa(stateCodes[in.State])}, true
	case "availability-zone":
		return []string{in.Zone}, true
	case "instance-type":
		return []string{in.Type}, true
	case "image-id":
		return []string{in.ImageID}, true
	case "reservation-id":
		return []string{in.ReservationID}, true
	case "private-ip-address":
		return []string{in.PrivateIP}, true
	case "private-dns-name":
		return []string{in.hostname() + ".ec2.internal"}, true
	case "client-token":
		return []string{in.ClientToken}, true
	case "block-device-mapping.volume-id":
		var out []string
		for _, v := range s.st.Volumes {
			if v.Attachment != nil && v.Attachment.InstanceID == in.ID {
				out = append(out, v.ID)
			}
		}
		return out, true
	}
	return tagFilterValues(in.Tags, name)
}

// selectInstances applies InstanceId.N and Filter.N; unknown ids are NotFound, as EC2 does.
func (s *Sim) selectInstances(q *query) ([]*instance, *apiError) {
	ids, aerr := q.list("InstanceId")
	if aerr != nil {
		return nil, aerr
	}
	fs, aerr := q.filters()
	if aerr != nil {
		return nil, aerr
	}
	var missing []string
	for _, id := range ids {
		if _, aerr := s.instanceByID(id); aerr != nil {
			if aerr.Code != "InvalidInstanceID.NotFound" {
				return nil, aerr
			}
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, errCode("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
	return selectByID(s.st.Instances, ids, fs, s.instanceFilterValues)
}

// selectByID returns, in id order, the resources of m that ids names (all when it is empty)
// and that pass every filter; values gives a resource's values for a filter name.
func selectByID[T any](m map[string]*T, ids []string, fs []filter, values func(r *T, name string) ([]string, bool)) ([]*T, *apiError) {
	var out []*T
	for _, id := range sortedKeys(m) {
		r := m[id]
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		ok, aerr := matchFilters(fs, func(n string) ([]string, bool) { return values(r, n) })
		if aerr != nil {
			return nil, aerr
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *Sim) describeInstances(q *query, now time.Time) (any, *apiError) {
	sel, aerr := s.selectInstances(q)
	if aerr != nil {
		return nil, aerr
	}
	pg, next, aerr := page(q, sel)
	if aerr != nil {
		return nil, aerr
	}
	resp := &describeInstancesResponse{NextToken: next}
	byRes := map[string]int{}
	for _, in := range pg {
		i, ok := byRes[in.ReservationID]
		if !ok {
			i = len(resp.Reservations)
			byRes[in.ReservationID] = i
			resp.Reservations = append(resp.Reservations, xReservation{ReservationID: in.ReservationID, OwnerID: ownerID})
		}
		resp.Reservations[i].Instances = append(resp.Reservations[i].Instances, s.xInstance(in))
	}
	return resp, nil
}

// statusInitTime is how long status checks say "initializing" after an instance starts.
const statusInitTime = 2 * time.Minute

func (s *Sim) instanceChecks(in *instance, now time.Time) (system, inst xStatusSummary) {
	check := func(status string, since time.Time) xStatusSummary {
		d := xStatusDetail{Name: "reachability", Status: map[string]string{"ok": "passed", "impaired": "failed", "initializing": "initializing"}[status]}
		if status == "impaired" {
			d.ImpairedSince = ts(since)
		}
		return xStatusSummary{Status: status, Details: []xStatusDetail{d}}
	}
	if in.State != stateRunning {
		na := xStatusSummary{Status: "not-applicable"}
		return na, na
	}
	switch {
	case !in.HardwareFailedAt.IsZero():
		system = check("impaired", in.HardwareFailedAt)
	case s.zoneDown(in.Zone):
		system = check("impaired", s.zoneDownSince(in.Zone))
	case now.Sub(in.StateSince) < statusInitTime:
		system = check("initializing", time.Time{})
	default:
		system = check("ok", time.Time{})
	}
	switch {
	case system.Status == "impaired":
		inst = check("impaired", *(*time.Time)(system.Details[0].ImpairedSince))
	case !in.BootFailedAt.IsZero():
		inst = check("impaired", in.BootFailedAt)
	default:
		inst = check(system.Status, time.Time{})
	}
	return system, inst
}

func (s *Sim) describeInstanceStatus(q *query, now time.Time) (any, *apiError) {
	all, aerr := q.bool("IncludeAllInstances")
	if aerr != nil {
		return nil, aerr
	}
	ids, aerr := q.list("InstanceId")
	if aerr != nil {
		return nil, aerr
	}
	// Status filters are this action's own; strip them before the instance-level selection.
	fs, aerr := q.filters()
	if aerr != nil {
		return nil, aerr
	}
	inner := &query{Action: q.Action, Params: map[string][]string{}}
	for i, id := range ids {
		inner.Params["InstanceId."+strconv.Itoa(i+1)] = []string{id}
	}
	sel, aerr := s.selectInstances(inner)
	if aerr != nil {
		return nil, aerr
	}
	var statuses []xInstanceStatus
	for _, in := range sel {
		if !all && in.State != stateRunning {
			continue
		}
		if in.State == stateTerminated && len(ids) == 0 {
			continue
		}
		sys, ins := s.instanceChecks(in, now)
		st := xInstanceStatus{InstanceID: in.ID, AvailabilityZone: in.Zone, InstanceState: xState{stateCodes[in.State], in.State}, SystemStatus: sys, InstanceStatus: ins}
		ok, aerr := matchFilters(fs, func(n string) ([]string, bool) {
			switch n {
			case "availability-zone":
				return []string{in.Zone}, true
			case "instance-state-name":
				return []string{in.State}, true
			case "instance-state-code":
				return []string{strconv.Itoa(stateCodes[in.State])}, true
			case "system-status.status":
				return []string{sys.Status}, true
			case "instance-status.status":
				return []string{ins.Status}, true
			case "system-status.reachability":
				return detailStatus(sys), true
			case "instance-status.reachability":
				return detailStatus(ins), true
			}
			return nil, false
		})
		if aerr != nil {
			return nil, aerr
		}
		if ok {
			statuses = append(statuses, st)
		}
	}
	pg, next, aerr := page(q, statuses)
	if aerr != nil {
		return nil, aerr
	}
	return &describeInstanceStatusResponse{Statuses: pg, NextToken: next}, nil
}

func detailStatus(s xStatusSummary) []string {
	var out []string
	for _, d := range s.Details {
		out = append(out, d.Status)
	}
	return out
}

// changeStates checks every InstanceId.N first and changes them only when all may change, so
// a refused call changes nothing; it reports previous and current states as
// Start/Stop/TerminateInstances do.
func (s *Sim) changeStates(q *query, check func(in *instance) *apiError, apply func(in *instance)) (any, *apiError) {
	ids, aerr := q.list("InstanceId")
	if aerr != nil {
		return nil, aerr
	}
	if len(ids) == 0 {
		return nil, errMissing("InstanceId")
	}
	for _, id := range ids {
		in, aerr := s.instanceByID(id)
		if aerr != nil {
			return nil, aerr
		}
		if aerr := check(in); aerr != nil {
			return nil, aerr
		}
	}
	resp := &stateChangeResponse{}
	for _, id := range ids {
		in := s.st.Instances[id]
		prev := in.State
		apply(in)
		resp.Instances = append(resp.Instances, xStateChange{InstanceID: id,
			PreviousState: xState{stateCodes[prev], prev}, CurrentState: xState{stateCodes[in.State], in.State}})
	}
	s.markDirty()
	return resp, nil
}

func (s *Sim) terminateInstances(q *query, now time.Time) (any, *apiError) {
	return s.changeStates(q, func(*instance) *apiError { return nil }, func(in *instance) {
		switch in.State {
		case stateTerminated, stateShuttingDown:
			return
		}
		s.setInstanceState(in, stateShuttingDown, now)
		in.TransitionAt = now.Add(terminateTime)
		in.StateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
	})
}

func (s *Sim) stopInstances(q *query, now time.Time) (any, *apiError) {
	force, aerr := q.bool("Force")
	if aerr != nil {
		return nil, aerr
	}
	check := func(in *instance) *apiError {
		switch in.State {
		case stateStopped, stateStopping, stateRunning:
			return nil
		}
		return errCode("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be stopped.", in.ID)
	}
	return s.changeStates(q, check, func(in *instance) {
		switch in.State {
		case stateStopped:
			return
		case stateStopping:
			// A forced stop cuts a hung stop short; the SDK retries a plain stop harmlessly.
			if force && !in.HardwareFailedAt.IsZero() && in.TransitionAt.After(now.Add(forcedHungStop)) {
				in.TransitionAt = now.Add(forcedHungStop)
				s.event(now, "instance.force-stop", in.ID, "forced stop of %s: stopped by %s", in.ID, in.TransitionAt.Format(time.RFC3339))
			}
			return
		}
		s.setInstanceState(in, stateStopping, now)
		in.StateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
		switch {
		case in.HardwareFailedAt.IsZero():
			in.TransitionAt = now.Add(stopTime)
		case force:
			in.TransitionAt = now.Add(forcedHungStop)
		default:
			in.TransitionAt = now.Add(hungStopTime)
			s.event(now, "instance.stop-hung", in.ID, "instance %s is on failed hardware: stop will take until %s unless forced", in.ID, in.TransitionAt.Format(time.RFC3339))
		}
	})
}

func (s *Sim) startInstances(q *query, now time.Time) (any, *apiError) {
	check := func(in *instance) *apiError {
		switch in.State {
		case stateRunning, statePending:
			return nil
		case stateStopped:
			if s.zoneDown(in.Zone) {
				return errCode("InsufficientInstanceCapacity", "We currently do not have sufficient %s capacity in the Availability Zone you requested (%s).", in.Type, in.Zone)
			}
			return nil
		}
		return errCode("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be started.", in.ID)
	}
	return s.changeStates(q, check, func(in *instance) {
		if in.State != stateStopped {
			return
		}
		s.setInstanceState(in, statePending, now)
		in.StateReason = ""
		in.TransitionAt = now.Add(bootTime)
	})
}

// ---- volumes -------------------------------------------------------------------------------

func (s *Sim) newVolume(zone string, size int32, vtype, snapID string, now time.Time, t tags) *volume {
	v := &volume{ID: s.st.newID("vol"), Zone: zone, SizeGiB: size, Type: vtype, SnapshotID: snapID,
		State: "creating", CreateTime: now, ReadyAt: now.Add(volumeCreateTime), Tags: append(tags(nil), t...)}
	if vtype == "io1" || vtype == "io2" || vtype == "gp3" {
		v.Iops = 3000
	}
	s.st.Volumes[v.ID] = v
	s.event(now, "volume.created", v.ID, "volume %s (%d GiB %s) created in %s", v.ID, size, vtype, zone)
	return v
}

var volumeTypes = map[string]bool{"standard": true, "gp2": true, "gp3": true, "io1": true, "io2": true, "st1": true, "sc1": true}

func (s *Sim) createVolume(q *query, now time.Time) (any, *apiError) {
	if ids, found, aerr := s.clientToken(q); aerr != nil {
		return nil, aerr
	} else if found {
		if v, ok := s.st.Volumes[ids[0]]; ok {
			return &createVolumeResponse{xVolume: s.xVolume(v)}, nil
		}
		return nil, errCode("IdempotentParameterMismatch", "The volume created with this client token no longer exists.")
	}
	zone := q.get("AvailabilityZone")
	if zone == "" {
		return nil, errMissing("AvailabilityZone")
	}
	if aerr := s.checkZone(zone); aerr != nil {
		return nil, aerr
	}
	size, aerr := q.int32("Size", 0)
	if aerr != nil {
		return nil, aerr
	}
	snapID := q.get("SnapshotId")
	if snapID != "" {
		sn, aerr := s.snapshotByID(snapID)
		if aerr != nil {
			return nil, aerr
		}
		if sn.State != "completed" {
			return nil, errCode("IncorrectState", "Snapshot '%s' is not in a completed state (%s).", snapID, sn.State)
		}
		if size == 0 {
			size = sn.VolumeSize
		}
		if size < sn.VolumeSize {
			return nil, errInvalidParameter(fmt.Sprintf("Volume of %d GiB is smaller than snapshot '%s', expect size >= %d GiB", size, snapID, sn.VolumeSize))
		}
	}
	if size == 0 && snapID == "" {
		return nil, errMissing("Size")
	}
	if size < 1 || size > 16384 {
		return nil, errInvalidParameter(fmt.Sprintf("Volume of %d GiB is out of range (1-16384)", size))
	}
	vtype := q.get("VolumeType")
	if vtype == "" {
		vtype = "gp2"
	}
	if !volumeTypes[vtype] {
		return nil, errInvalidParameter(fmt.Sprintf("Value (%s) for parameter volumeType is invalid.", vtype))
	}
	if s.zoneDown(zone) {
		return nil, errCode("InsufficientVolumeCapacity", "There is currently insufficient capacity in %s to create the volume.", zone)
	}
	specs, aerr := q.tagSpecs("volume")
	if aerr != nil {
		return nil, aerr
	}
	enc, aerr := q.bool("Encrypted")
	if aerr != nil {
		return nil, aerr
	}
	v := s.newVolume(zone, size, vtype, snapID, now, tagsFor(specs, "volume"))
	v.Encrypted = enc
	if iops, _ := q.int32("Iops", 0); iops > 0 {
		v.Iops = iops
	}
	v.ClientToken = q.get("ClientToken")
	s.rememberToken(q, []string{v.ID})
	return &createVolumeResponse{xVolume: s.xVolume(v)}, nil
}

func (s *Sim) xVolume(v *volume) xVolume {
	x := xVolume{VolumeID: v.ID, Size: v.SizeGiB, SnapshotID: v.SnapshotID, AvailabilityZone: v.Zone, Status: v.State,
		CreateTime: ts(v.CreateTime), VolumeType: v.Type, Iops: v.Iops, Encrypted: v.Encrypted, TagSet: xTags(v.Tags)}
	if a := v.Attachment; a != nil {
		x.Attachments = []xAttachment{{VolumeID: v.ID, InstanceID: a.InstanceID, Device: a.Device, Status: a.State, AttachTime: ts(a.Since), DeleteOnTermination: v.DeleteOnTerm}}
	}
	return x
}

func (s *Sim) deleteVolume(q *query, now time.Time) (any, *apiError) {
	id := q.get("VolumeId")
	if id == "" {
		return nil, errMissing("VolumeId")
	}
	v, aerr := s.volumeByID(id)
	if aerr != nil {
		return nil, aerr
	}
	if v.Attachment != nil {
		return nil, errCode("VolumeInUse", "Volume %s is currently attached to %s", id, v.Attachment.InstanceID)
	}
	delete(s.st.Volumes, id)
	delete(s.st.Mods, id)
	s.event(now, "volume.deleted", id, "volume %s deleted", id)
	return &returnResponse{Return: true}, nil
}

func (s *Sim) attachVolume(q *query, now time.Time) (any, *apiError) {
	for _, p := range []string{"Device", "InstanceId", "VolumeId"} {
		if q.get(p) == "" {
			return nil, errMissing(p)
		}
	}
	v, aerr := s.volumeByID(q.get("VolumeId"))
	if aerr != nil {
		return nil, aerr
	}
	in, aerr := s.instanceByID(q.get("InstanceId"))
	if aerr != nil {
		return nil, aerr
	}
	dev := q.get("Device")
	if v.Attachment != nil {
		return nil, errCode("VolumeInUse", "%s is already attached to an instance", v.ID)
	}
	if v.State != "available" {
		return nil, errCode("IncorrectState", "vol '%s' is not 'available'.", v.ID)
	}
	switch in.State {
	case stateRunning, stateStopped:
	default:
		return nil, errCode("IncorrectInstanceState", "Instance '%s' is not 'running' or 'stopped'.", in.ID)
	}
	if v.Zone != in.Zone {
		return nil, errCode("InvalidVolume.ZoneMismatch", "The volume '%s' is not in the same availability zone as instance '%s'", v.ID, in.ID)
	}
	for _, other := range s.st.Volumes {
		if a := other.Attachment; a != nil && a.InstanceID == in.ID && a.Device == dev {
			return nil, errInvalidParameter(fmt.Sprintf("Invalid value '%s' for unixDevice. Attachment point %s is already in use", dev, dev))
		}
	}
	v.State = "in-use"
	v.Attachment = &attach{InstanceID: in.ID, Device: dev, State: "attaching", Since: now, ReadyAt: now.Add(attachTime)}
	s.event(now, "volume.attaching", v.ID, "volume %s attaching to %s as %s", v.ID, in.ID, dev)
	return &attachmentResponse{xAttachment: xAttachment{VolumeID: v.ID, InstanceID: in.ID, Device: dev, Status: "attaching", AttachTime: ts(now)}}, nil
}

func (s *Sim) detachVolume(q *query, now time.Time) (any, *apiError) {
	if q.get("VolumeId") == "" {
		return nil, errMissing("VolumeId")
	}
	v, aerr := s.volumeByID(q.get("VolumeId"))
	if aerr != nil {
		return nil, aerr
	}
	force, aerr := q.bool("Force")
	if aerr != nil {
		return nil, aerr
	}
	a := v.Attachment
	if a == nil {
		return nil, errCode("IncorrectState", "Volume '%s' is in the '%s' state.", v.ID, v.State)
	}
	if id := q.get("InstanceId"); id != "" && id != a.InstanceID {
		return nil, errCode("InvalidAttachment.NotFound", "Volume '%s' is not attached to instance '%s'.", v.ID, id)
	}
	in := s.st.Instances[a.InstanceID]
	if v.Root && in != nil && in.State != stateStopped {
		return nil, errCode("OperationNotPermitted", "Unable to detach root volume '%s' from instance '%s'", v.ID, a.InstanceID)
	}
	if a.State != "detaching" {
		a.State = "detaching"
		a.ReadyAt = now.Add(detachTime)
		// The host of a failed instance never acknowledges the detach: only Force frees it soon.
		if in != nil && !in.HardwareFailedAt.IsZero() && in.State != stateStopped && !force {
			a.ReadyAt = now.Add(hungStopTime)
		}
		s.event(now, "volume.detaching", v.ID, "volume %s detaching from %s (force=%v)", v.ID, a.InstanceID, force)
	} else if force && a.ReadyAt.After(now.Add(detachTime)) {
		a.ReadyAt = now.Add(detachTime)
	}
	return &attachmentResponse{xAttachment: xAttachment{VolumeID: v.ID, InstanceID: a.InstanceID, Device: a.Device, Status: "detaching", AttachTime: ts(a.Since)}}, nil
}

func (s *Sim) volumeFilterValues(v *volume, name string) ([]string, bool) {
	one := func(x string) ([]string, bool) { return []string{x}, true }
	switch name {
	case "volume-id":
		return one(v.ID)
	case "status":
		return one(v.State)
	case "availability-zone":
		return one(v.Zone)
	case "size":
		return one(strconv.Itoa(int(v.SizeGiB)))
	case "volume-type":
		return one(v.Type)
	case "snapshot-id":
		return one(v.SnapshotID)
	case "encrypted":
		return one(strconv.FormatBool(v.Encrypted))
	case "create-time":
		return one(v.CreateTime.UTC().Format(ec2TimeFormat))
	case "attachment.instance-id", "attachment.status", "attachment.device", "attachment.delete-on-termination":
		if v.Attachment == nil {
			return nil, true
		}
		return one(map[string]string{"attachment.instance-id": v.Attachment.InstanceID, "attachment.status": v.Attachment.State,
			"attachment.device": v.Attachment.Device, "attachment.delete-on-termination": strconv.FormatBool(v.DeleteOnTerm)}[name])
	}
	return tagFilterValues(v.Tags, name)
}

func (s *Sim) describeVolumes(q *query, now time.Time) (any, *apiError) {
	ids, aerr := q.list("VolumeId")
	if aerr != nil {
		return nil, aerr
	}
	for _, id := range ids {
		if _, aerr := s.volumeByID(id); aerr != nil {
			return nil, aerr
		}
	}
	fs, aerr := q.filters()
	if aerr != nil {
		return nil, aerr
	}
	sel, aerr := selectByID(s.st.Volumes, ids, fs, s.volumeFilterValues)
	if aerr != nil {
		return nil, aerr
	}
	var out []xVolume
	for _, v := range sel {
		out = append(out, s.xVolume(v))
	}
	pg, next, aerr := page(q, out)
	if aerr != nil {
		return nil, aerr
	}
	return &describeVolumesResponse{Volumes: pg, NextToken: next}, nil
}

func (s *Sim) modifyVolume(q *query, now time.Time) (any, *apiError) {
	if q.get("VolumeId") == "" {
		return nil, errMissing("VolumeId")
	}
	v, aerr := s.volumeByID(q.get("VolumeId"))
	if aerr != nil {
		return nil, aerr
	}
	if m, ok := s.st.Mods[v.ID]; ok && m.State != "completed" {
		return nil, errCode("IncorrectModificationState", "Cannot modify volume %s: a modification is in the '%s' state.", v.ID, m.State)
	}
	if v.State == "creating" {
		return nil, errCode("IncorrectState", "The volume '%s' is not in a state to be modified (creating).", v.ID)
	}
	size, aerr := q.int32("Size", v.SizeGiB)
	if aerr != nil {
		return nil, aerr
	}
	iops, aerr := q.int32("Iops", v.Iops)
	if aerr != nil {
		return nil, aerr
	}
	vtype := q.get("VolumeType")
	if vtype == "" {
		vtype = v.Type
	}
	if !volumeTypes[vtype] {
		return nil, errInvalidParameter(fmt.Sprintf("Value (%s) for parameter volumeType is invalid.", vtype))
	}
	if size < v.SizeGiB {
		return nil, errInvalidParameter(fmt.Sprintf("New size cannot be smaller than existing size of %d GiB", v.SizeGiB))
	}
	if size > 16384 {
		return nil, errInvalidParameter(fmt.Sprintf("Volume of %d GiB is out of range (1-16384)", size))
	}
	if size == v.SizeGiB && vtype == v.Type && iops == v.Iops {
		return nil, errCode("InvalidParameterCombination", "New size, volume type and IOPS are all the same as the existing volume's.")
	}
	m := &volumeMod{VolumeID: v.ID, State: "modifying", OriginalSize: v.SizeGiB, TargetSize: size, OriginalType: v.Type,
		TargetType: vtype, OriginalIops: v.Iops, TargetIops: iops, StartTime: now, OptimizeAt: now.Add(modifyingTime)}
	m.EndTime = m.OptimizeAt.Add(time.Duration(float64(size) * gib / optimizeRate * float64(time.Second))).Truncate(time.Millisecond)
	s.st.Mods[v.ID] = m
	v.SizeGiB, v.Type, v.Iops = size, vtype, iops
	s.event(now, "volume.modification.started", v.ID, "volume %s modifying: %d→%d GiB, %s→%s", v.ID, m.OriginalSize, size, m.OriginalType, vtype)
	return &modifyVolumeResponse{Modification: xMod(m, now)}, nil
}

func xMod(m *volumeMod, now time.Time) xVolumeModification {
	x := xVolumeModification{VolumeID: m.VolumeID, ModificationState: m.State, TargetSize: m.TargetSize, TargetIops: m.TargetIops,
		TargetVolumeType: m.TargetType, OriginalSize: m.OriginalSize, OriginalIops: m.OriginalIops, OriginalVolumeType: m.OriginalType,
		Progress: m.progress(now), StartTime: ts(m.StartTime)}
	if m.State == "completed" {
		x.EndTime = ts(m.EndTime)
	}
	return x
}

func (s *Sim) describeVolumesModifications(q *query, now time.Time) (any, *apiError) {
	ids, aerr := q.list("VolumeId")
	if aerr != nil {
		return nil, aerr
	}
	for _, id := range ids {
		if _, aerr := s.volumeByID(id); aerr != nil {
			return nil, aerr
		}
		if _, ok := s.st.Mods[id]; !ok {
			return nil, errCode("InvalidVolumeModification.NotFound", "Modification for volume '%s' does not exist.", id)
		}
	}
	fs, aerr := q.filters()
	if aerr != nil {
		return nil, aerr
	}
	sel, aerr := selectByID(s.st.Mods, ids, fs, func(m *volumeMod, n string) ([]string, bool) {
		switch n {
		case "volume-id":
			return []string{m.VolumeID}, true
		case "modification-state":
			return []string{m.State}, true
		case "target-size":
			return []string{strconv.Itoa(int(m.TargetSize))}, true
		case "original-size":
			return []string{strconv.Itoa(int(m.OriginalSize))}, true
		case "target-volume-type":
			return []string{m.TargetType}, true
		case "original-volume-type":
			return []string{m.OriginalType}, true
		}
		return nil, false
	})
	if aerr != nil {
		return nil, aerr
	}
	var out []xVolumeModification
	for _, m := range sel {
		out = append(out, xMod(m, now))
	}
	pg, next, aerr := page(q, out)
	if aerr != nil {
		return nil, aerr
	}
	return &describeVolumesModificationsResponse{Modifications: pg, NextToken: next}, nil
}

// ---- snapshots -----------------------------------------------------------------------------

func (s *Sim) createSnapshot(q *query, now time.Time) (any, *apiError) {
	if q.get("VolumeId") == "" {
		return nil, errMissing("VolumeId")
	}
	v, aerr := s.volumeByID(q.get("VolumeId"))
	if aerr != nil {
		return nil, aerr
	}
	if v.State == "creating" {
		return nil, errCode("IncorrectState", "The volume '%s' is not 'available' or 'in-use'.", v.ID)
	}
	specs, aerr := q.tagSpecs("snapshot")
	if aerr != nil {
		return nil, aerr
	}
	sn := &snapshot{ID: s.st.newID("snap"), VolumeID: v.ID, VolumeSize: v.SizeGiB, Zone: v.Zone, Description: q.get("Description"),
		State: "pending", StartTime: now, Updated: now, Tags: tagsFor(specs, "snapshot")}
	size := float64(v.SizeGiB) * gib
	if v.Snapshotted {
		sn.Total, sn.Rate = size*incrChangeShare, incrSnapshotRate
	} else {
		sn.Total, sn.Rate = size, firstSnapshotRate
	}
	s.st.Snapshots[sn.ID] = sn
	kind := "first (full)"
	if v.Snapshotted {
		kind = "incremental"
	}
	s.event(now, "snapshot.started", sn.ID, "snapshot %s of %s started: %s, %.1f GiB at %.0f MB/s", sn.ID, v.ID, kind, sn.Total/gib, sn.Rate/mb)
	return &createSnapshotResponse{xSnapshot: xSnap(sn)}, nil
}

func xSnap(sn *snapshot) xSnapshot {
	x := xSnapshot{SnapshotID: sn.ID, VolumeID: sn.VolumeID, Status: sn.State, StartTime: ts(sn.StartTime), Progress: sn.progress(),
		OwnerID: ownerID, VolumeSize: sn.VolumeSize, Description: sn.Description, StorageTier: "standard", TagSet: xTags(sn.Tags)}
	if sn.State == "completed" {
		x.CompletionTim = ts(sn.DoneTime)
	}
	return x
}

func (s *Sim) describeSnapshots(q *query, now time.Time) (any, *apiError) {
	ids, aerr := q.list("SnapshotId")
	if aerr != nil {
		return nil, aerr
	}
	for _, id := range ids {
		if _, aerr := s.snapshotByID(id); aerr != nil {
			return nil, aerr
		}
	}
	fs, aerr := q.filters()
	if aerr != nil {
		return nil, aerr
	}
	sel, aerr := selectByID(s.st.Snapshots, ids, fs, func(sn *snapshot, n string) ([]string, bool) {
		one := func(x string) ([]string, bool) { return []string{x}, true }
		switch n {
		case "snapshot-id":
			return one(sn.ID)
		case "volume-id":
			return one(sn.VolumeID)
		case "status":
			return one(sn.State)
		case "progress":
			return one(sn.progress())
		case "description":
			return one(sn.Description)
		case "owner-id":
			return one(ownerID)
		case "volume-size":
			return one(strconv.Itoa(int(sn.VolumeSize)))
		case "start-time":
			return one(sn.StartTime.UTC().Format(ec2TimeFormat))
		}
		return tagFilterValues(sn.Tags, n)
	})
	if aerr != nil {
		return nil, aerr
	}
	var out []xSnapshot
	for _, sn := range sel {
		// EC2 is eventually consistent: a snapshot just taken is not in a listing (a filter by
		// tag, volume or status) until the lag has passed, though asking for its id finds it.
		if len(ids) == 0 && now.Before(sn.StartTime.Add(snapshotListLag)) {
			continue
		}
		out = append(out, xSnap(sn))
	}
	pg, next, aerr := page(q, out)
	if aerr != nil {
		return nil, aerr
	}
	return &describeSnapshotsResponse{Snapshots: pg, NextToken: next}, nil
}

func (s *Sim) copySnapshot(q *query, now time.Time) (any, *apiError) {
	src := q.get("SourceSnapshotId")
	if src == "" {
		return nil, errMissing("SourceSnapshotId")
	}
	if q.get("SourceRegion") == "" {
		return nil, errMissing("SourceRegion")
	}
	if r := q.get("SourceRegion"); r != s.cfg.Region {
		return nil, errInvalidParameter(fmt.Sprintf("cloudsim simulates one region (%s); SourceRegion %s is not it", s.cfg.Region, r))
	}
	orig, aerr := s.snapshotByID(src)
	if aerr != nil {
		return nil, aerr
	}
	if orig.State != "completed" {
		return nil, errCode("IncorrectState", "Snapshot '%s' is not in a completed state (%s).", src, orig.State)
	}
	specs, aerr := q.tagSpecs("snapshot")
	if aerr != nil {
		return nil, aerr
	}
	sn := &snapshot{ID: s.st.newID("snap"), VolumeID: orig.VolumeID, VolumeSize: orig.VolumeSize, Description: q.get("Description"),
		State: "pending", StartTime: now, Updated: now, Total: float64(orig.VolumeSize) * gib, Rate: copySnapshotRate,
		SourceSnap: src, Tags: tagsFor(specs, "snapshot")}
	s.st.Snapshots[sn.ID] = sn
	s.event(now, "snapshot.copy-started", sn.ID, "snapshot %s copying from %s: %d GiB at %.0f MB/s", sn.ID, src, orig.VolumeSize, sn.Rate/mb)
	return &copySnapshotResponse{SnapshotID: sn.ID, TagSet: xTags(sn.Tags)}, nil
}

func (s *Sim) deleteSnapshot(q *query, now time.Time) (any, *apiError) {
	id := q.get("SnapshotId")
	if id == "" {
		return nil, errMissing("SnapshotId")
	}
	if _, aerr := s.snapshotByID(id); aerr != nil {
		return nil, aerr
	}
	for _, v := range s.st.Volumes {
		if v.SnapshotID == id && v.State == "creating" {
			return nil, errCode("InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", id, v.ID)
		}
	}
	delete(s.st.Snapshots, id)
	s.event(now, "snapshot.deleted", id, "snapshot %s deleted", id)
	return &returnResponse{Return: true}, nil
}

// ---- tags ----------------------------------------------------------------------------------

// resourceTags finds the tag set of any taggable resource by id.
func (s *Sim) resourceTags(id string) (*tags, string, *apiError) {
	switch {
	case strings.HasPrefix(id, "i-"):
		in, aerr := s.instanceByID(id)
		if aerr != nil {
			return nil, "", aerr
		}
		return &in.Tags, "instance", nil
	case strings.HasPrefix(id, "vol-"):
		v, aerr := s.volumeByID(id)
		if aerr != nil {
			return nil, "", aerr
		}
		return &v.Tags, "volume", nil
	case strings.HasPrefix(id, "snap-"):
		sn, aerr := s.snapshotByID(id)
		if aerr != nil {
			return nil, "", aerr
		}
		return &sn.Tags, "snapshot", nil
	}
	return nil, "", errCode("InvalidID", "The ID '%s' is not valid", id)
}

func (s *Sim) createTags(q *query, now time.Time) (any, *apiError) {
	ids, aerr := q.list("ResourceId")
	if aerr != nil {
		return nil, aerr
	}
	if len(ids) == 0 {
		return nil, errMissing("ResourceId")
	}
	newTags, aerr := q.tagList("Tag")
	if aerr != nil {
		return nil, aerr
	}
	var sets []*tags
	for _, id := range ids {
		t, _, aerr := s.resourceTags(id)
		if aerr != nil {
			return nil, aerr
		}
		sets = append(sets, t)
	}
	for i, t := range sets {
		merged := append(tags(nil), *t...)
		for _, nt := range newTags {
			merged.set(nt.Key, nt.Value)
		}
		if len(merged) > 50 {
			return nil, errCode("TagLimitExceeded", "the TagSet on %s exceeds the limit of 50 tags", ids[i])
		}
	}
	for i, t := range sets {
		for _, nt := range newTags {
			t.set(nt.Key, nt.Value)
		}
		s.event(now, "tags.created", ids[i], "%d tag(s) set on %s", len(newTags), ids[i])
	}
	return &returnResponse{Return: true}, nil
}

func (s *Sim) deleteTags(q *query, now time.Time) (any, *apiError) {
	ids, aerr := q.list("ResourceId")
	if aerr != nil {
		return nil, aerr
	}
	if len(ids) == 0 {
		return nil, errMissing("ResourceId")
	}
	idx, aerr := q.indexes("Tag")
	if aerr != nil {
		return nil, aerr
	}
	for _, id := range ids { // all must exist before any changes
		if _, _, aerr := s.resourceTags(id); aerr != nil {
			return nil, aerr
		}
	}
	for _, id := range ids {
		t, _, _ := s.resourceTags(id)
		var kept tags
		for _, x := range *t {
			drop := len(idx) == 0 // no Tag.N: delete all
			for _, n := range idx {
				p := "Tag." + strconv.Itoa(n)
				if q.get(p+".Key") == x.Key {
					if _, hasValue := q.Params[p+".Value"]; !hasValue || q.get(p+".Value") == x.Value {
						drop = true
					}
				}
			}
			if !drop {
				kept = append(kept, x)
			}
		}
		*t = kept
		s.event(now, "tags.deleted", id, "tags deleted on %s", id)
	}
	return &returnResponse{Return: true}, nil
}

func (s *Sim) describeTags(q *query, now time.Time) (any, *apiError) {
	fs, aerr := q.filters()
	if aerr != nil {
		return nil, aerr
	}
	type owned struct {
		id, typ string
		t       tags
	}
	var all []owned
	for _, id := range sortedKeys(s.st.Instances) {
		all = append(all, owned{id, "instance", s.st.Instances[id].Tags})
	}
	for _, id := range sortedKeys(s.st.Volumes) {
		all = append(all, owned{id, "volume", s.st.Volumes[id].Tags})
	}
	for _, id := range sortedKeys(s.st.Snapshots) {
		all = append(all, owned{id, "snapshot", s.st.Snapshots[id].Tags})
	}
	var out []xTagDescription
	for _, o := range all {
		sorted := append(tags(nil), o.t...)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
		for _, t := range sorted {
			ok, aerr := matchFilters(fs, func(n string) ([]string, bool) {
				switch n {
				case "resource-id":
					return []string{o.id}, true
				case "resource-type":
					return []string{o.typ}, true
				case "key":
					return []string{t.Key}, true
				case "value":
					return []string{t.Value}, true
				}
				if strings.HasPrefix(n, "tag:") {
					return tagFilterValues(o.t, n)
				}
				return nil, false
			})
			if aerr != nil {
				return nil, aerr
			}
			if ok {
				out = append(out, xTagDescription{ResourceID: o.id, ResourceType: o.typ, Key: t.Key, Value: t.Value})
			}
		}
	}
	pg, next, aerr := page(q, out)
	if aerr != nil {
		return nil, aerr
	}
	return &describeTagsResponse{Tags: pg, NextToken: next}, nil
}
