// EC2 volumes: Create/Delete/Attach/Detach/Describe/ModifyVolume(s), DescribeVolumesModifications.

package cloudsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

func (s *Sim) newVolume(zone string, size int32, vtype, snapID string, now time.Time, t tags) *volume {
	v := &volume{ID: s.st.newID("vol"), Zone: zone, SizeGiB: size, Type: vtype, Iops: defaultIops(vtype, size), SnapshotID: snapID,
		State: "creating", CreateTime: now, ReadyAt: now.Add(volumeCreateTime), Tags: append(tags(nil), t...)}
	if vtype == "gp3" {
		v.Throughput = anyops.GP3BaseThroughput
	}
	if sn := s.st.Snapshots[snapID]; sn != nil {
		v.restoreFromSnapshot(sn, 0)
	}
	s.st.Volumes[v.ID] = v
	s.event(now, "volume.created", v.ID, "volume %s (%d GiB %s) created in %s", v.ID, size, vtype, zone)
	return v
}

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
	vtype := q.get("VolumeType")
	if vtype == "" {
		vtype = "gp2"
	}
	iops, aerr := q.int32("Iops", 0)
	if aerr != nil {
		return nil, aerr
	}
	if _, known := ebsType(vtype); known && iops == 0 {
		iops = defaultIops(vtype, size)
	}
	throughput, aerr := q.int32("Throughput", 0)
	if aerr != nil {
		return nil, aerr
	}
	if vtype == "gp3" && throughput == 0 {
		throughput = anyops.GP3BaseThroughput
	}
	if aerr := checkVolumeSpec(vtype, size, iops, throughput); aerr != nil {
		return nil, aerr
	}
	initRate, aerr := q.int32("VolumeInitializationRate", 0)
	if aerr != nil {
		return nil, aerr
	}
	if initRate != 0 && (snapID == "" || initRate < minInitRate || initRate > maxInitRate) {
		return nil, errInvalidParameter(fmt.Sprintf("VolumeInitializationRate must be between %d and %d MiB/s, and only for a volume created from a snapshot.", minInitRate, maxInitRate))
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
	v.Encrypted, v.Iops, v.Throughput = enc, iops, throughput
	v.InitRate = float64(initRate) * mb
	v.ClientToken = q.get("ClientToken")
	s.rememberToken(q, []string{v.ID})
	return &createVolumeResponse{xVolume: s.xVolume(v)}, nil
}

func (s *Sim) xVolume(v *volume) xVolume {
	x := xVolume{VolumeID: v.ID, Size: v.SizeGiB, SnapshotID: v.SnapshotID, AvailabilityZone: v.Zone, Status: v.State,
		CreateTime: ts(v.CreateTime), VolumeType: v.Type, Iops: v.Iops, Throughput: v.Throughput, InitRate: int32(v.InitRate / mb),
		Encrypted: v.Encrypted, TagSet: xTags(v.Tags)}
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

// modifyVolume is Elastic Volumes as AWS documents it in 2026: the volume attached or not
// (in-use or available), the previous modification completed, at most four modifications in a
// rolling 24 hours, the size only growing, the new configuration valid for its type, and no
// magnetic volume on either side. The volume has its new configuration at once; performance
// is the lower of the two until the optimizing phase ends (ebs.go).
func (s *Sim) modifyVolume(q *query, now time.Time) (any, *apiError) {
	if q.get("VolumeId") == "" {
		return nil, errMissing("VolumeId")
	}
	v, aerr := s.volumeByID(q.get("VolumeId"))
	if aerr != nil {
		return nil, aerr
	}
	if m, ok := s.st.Mods[v.ID]; ok && m.State != "completed" {
		return nil, errCode("IncorrectModificationState", "Volume %s cannot be modified in modification state %s.", v.ID, strings.ToUpper(m.State))
	}
	if v.State != "available" && v.State != "in-use" {
		return nil, errCode("IncorrectState", "The volume '%s' is not in a state to be modified (%s).", v.ID, v.State)
	}
	if n, freeAt := v.modsInWindow(now); n >= modsPerDay {
		return nil, errCode("VolumeModificationRateExceeded", "You've reached the maximum modification rate per volume limit (%d in 24 hours). You can modify volume %s again after %s.", modsPerDay, v.ID, freeAt.UTC().Format(time.RFC3339))
	}
	size, aerr := q.int32("Size", v.SizeGiB)
	if aerr != nil {
		return nil, aerr
	}
	vtype := q.get("VolumeType")
	if vtype == "" {
		vtype = v.Type
	}
	if _, known := ebsType(vtype); !known {
		return nil, errInvalidParameter(fmt.Sprintf("Value (%s) for parameter volumeType is invalid. Valid values: standard, gp2, gp3, io1, io2, st1, sc1.", vtype))
	}
	if from, _ := ebsType(v.Type); !from.Modifiable {
		return nil, errCode("UnsupportedOperation", "Volume %s: previous-generation magnetic (standard) volumes cannot be modified. Take a snapshot and create a volume of the type you want from it.", v.ID)
	}
	if to, _ := ebsType(vtype); !to.Modifiable {
		return nil, errCode("UnsupportedOperation", "Volume %s cannot be modified to a previous-generation magnetic (standard) volume.", v.ID)
	}
	// IOPS and throughput keep their values within a type and take the new type's
	// defaults when it changes.
	iopsDefault, tpDefault := v.Iops, v.Throughput
	if vtype != v.Type {
		iopsDefault, tpDefault = defaultIops(vtype, size), 0
	} else if vtype == "gp2" {
		iopsDefault = defaultIops(vtype, size)
	}
	iops, aerr := q.int32("Iops", iopsDefault)
	if aerr != nil {
		return nil, aerr
	}
	throughput, aerr := q.int32("Throughput", tpDefault)
	if aerr != nil {
		return nil, aerr
	}
	if vtype == "gp3" && throughput == 0 {
		throughput = anyops.GP3BaseThroughput
	}
	if size < v.SizeGiB {
		return nil, errInvalidParameter(fmt.Sprintf("New size cannot be smaller than existing size of %d GiB.", v.SizeGiB))
	}
	if aerr := checkVolumeSpec(vtype, size, iops, throughput); aerr != nil {
		return nil, aerr
	}
	if size == v.SizeGiB && vtype == v.Type && iops == v.Iops && throughput == v.Throughput {
		return nil, errCode("InvalidParameterCombination", "New size, volume type, IOPS and throughput are all the same as the existing volume's.")
	}
	m := &volumeMod{VolumeID: v.ID, State: "modifying", OriginalSize: v.SizeGiB, TargetSize: size, OriginalType: v.Type,
		TargetType: vtype, OriginalIops: v.Iops, TargetIops: iops, OriginalThroughput: v.Throughput, TargetThroughput: throughput,
		StartTime: now, OptimizeAt: now.Add(modifyingTime)}
	m.EndTime = m.OptimizeAt.Add(optimizeDuration(size))
	s.st.Mods[v.ID] = m
	v.ModStarts = append(v.ModStarts, now)
	v.SizeGiB, v.Type, v.Iops, v.Throughput = size, vtype, iops, throughput
	s.event(now, "volume.modification.started", v.ID, "volume %s modifying: %d→%d GiB, %s→%s, %d→%d IOPS", v.ID, m.OriginalSize, size, m.OriginalType, vtype, m.OriginalIops, iops)
	return &modifyVolumeResponse{Modification: xMod(m, now)}, nil
}

func xMod(m *volumeMod, now time.Time) xVolumeModification {
	x := xVolumeModification{VolumeID: m.VolumeID, ModificationState: m.State, TargetSize: m.TargetSize, TargetIops: m.TargetIops,
		TargetVolumeType: m.TargetType, OriginalSize: m.OriginalSize, OriginalIops: m.OriginalIops, OriginalVolumeType: m.OriginalType,
		TargetThroughput: m.TargetThroughput, OriginalThroughput: m.OriginalThroughput,
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
