// EC2 snapshots: Create/Describe/Copy/DeleteSnapshot(s).

package cloudsim

import (
	"fmt"
	"strconv"
	"time"
)

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
	sn.Data = v.Data.clone() // point in time: what is on the volume now
	bytes, full := v.snapshotBytes()
	// A first snapshot reads every written block, loaded or not; an incremental one only the
	// changed blocks, which are on the volume (written since it was restored, if it was).
	rate := s.throughput(v)
	if full {
		rate = s.readRate(v)
		v.readAll(bytes)
	}
	sn.Total, sn.FullBytes, sn.Rate = bytes, v.Written, min(rate, snapshotMaxRate)
	sn.Setup = snapshotSetupTime
	if !full {
		sn.Parent = v.LastSnapshot
	}
	// The next snapshot is incremental to this one: the changed blocks count from now.
	v.LastSnapshot, v.Changed = sn.ID, 0
	s.st.Snapshots[sn.ID] = sn
	kind := "first (full)"
	if !full {
		kind = "incremental to " + sn.Parent
	}
	s.event(now, "snapshot.started", sn.ID, "snapshot %s of %s started: %s, %.2f GiB at %.0f MB/s", sn.ID, v.ID, kind, sn.Total/gib, sn.Rate/mb)
	return &createSnapshotResponse{xSnapshot: xSnap(sn)}, nil
}

func xSnap(sn *snapshot) xSnapshot {
	x := xSnapshot{SnapshotID: sn.ID, VolumeID: sn.VolumeID, Status: sn.State, StartTime: ts(sn.StartTime), Progress: sn.progress(),
		OwnerID: ownerID, VolumeSize: sn.VolumeSize, Description: sn.Description, StorageTier: "standard", TagSet: xTags(sn.Tags)}
	if sn.State == "completed" {
		x.CompletionTim = ts(sn.DoneTime)
		full := int64(sn.FullBytes)
		x.FullSnapshotSizeInBytes = &full
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
		State: "pending", StartTime: now, Updated: now, Total: orig.FullBytes, FullBytes: orig.FullBytes, Rate: copySnapshotRate,
		Setup: snapshotSetupTime, SourceSnap: src, Tags: tagsFor(specs, "snapshot")}
	sn.Data = orig.Data.clone()
	s.st.Snapshots[sn.ID] = sn
	s.event(now, "snapshot.copy-started", sn.ID, "snapshot %s copying from %s: %.2f GiB at %.0f MB/s", sn.ID, src, sn.Total/gib, sn.Rate/mb)
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
