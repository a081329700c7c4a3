// EC2 instances: RunInstances, Describe/Terminate/Stop/StartInstances, DescribeInstanceStatus.

package cloudsim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

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
		root.Data.FS = "ext4" // the image's root file system
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
		ClientToken: in.ClientToken, TagSet: xTags(in.Tags), Hypervisor: "xen", VpcID: VPCID,
	}
	if in.State == stateTerminated {
		x.PrivateDNSName, x.PrivateIPAddress, x.VpcID = "", "", ""
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
	case "vpc-id":
		return []string{VPCID}, true
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
