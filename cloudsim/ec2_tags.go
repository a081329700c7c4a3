// EC2 tags and availability zones: Create/Delete/DescribeTags, DescribeAvailabilityZones.

package cloudsim

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

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
