// The world's clockwork: settling the simulation up to simulated now, step by step through
// every moment something is due, and what follows at each of those moments.

package cloudsim

import (
	"sort"
	"time"
)

// settle brings the world to simulated time now. It steps through every moment something is
// due on the way — a scheduled fault, an instance or attachment transition, a volume or
// modification becoming ready, a DNS change becoming INSYNC — in time order, so each happens
// at its own time against the world as it was then, and what follows from it (DRBD links, NFS
// clients, alarms) is re-evaluated right there. Callers hold s.mu.
func (s *Sim) settle(now time.Time) {
	sort.SliceStable(s.st.Scheduled, func(i, j int) bool { return s.st.Scheduled[i].At.Before(s.st.Scheduled[j].At) })
	for {
		t := s.nextDue(now)
		if t.IsZero() {
			break
		}
		s.advance(t)
		for len(s.st.Scheduled) > 0 && !s.st.Scheduled[0].At.After(t) {
			sf := s.st.Scheduled[0]
			s.st.Scheduled = s.st.Scheduled[1:]
			f := sf.Fault
			if err := s.applyFault(sf.At, &f); err != nil {
				s.event(sf.At, "scenario.fault-rejected", f.target(), "scheduled %s fault rejected: %s", f.Type, err.Message)
			}
			s.markDirty()
		}
		s.reevaluate(t)
	}
	s.advance(now)
	s.reevaluate(now)
	if now.After(s.st.Clock) {
		s.st.Clock = now
	}
}

// nextDue is the earliest moment after the clock and not after now at which something is due
// (see settle); zero when nothing is.
func (s *Sim) nextDue(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && !t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if len(s.st.Scheduled) > 0 {
		consider(s.st.Scheduled[0].At)
	}
	for _, in := range s.st.Instances {
		consider(in.TransitionAt)
		// Status checks pass once they have run after a start (DescribeInstanceStatus, the
		// alarms' metric): a moment the world changes by itself.
		if checked := in.StateSince.Add(statusInitTime); in.State == stateRunning && checked.After(s.st.Clock) {
			consider(checked)
		}
	}
	for _, v := range s.st.Volumes {
		if v.State == "creating" {
			consider(v.ReadyAt)
		}
		if a := v.Attachment; a != nil && (a.State == "attaching" || a.State == "detaching") {
			consider(a.ReadyAt)
		}
	}
	for _, m := range s.st.Mods {
		switch m.State {
		case "modifying":
			consider(m.OptimizeAt)
		case "optimizing":
			consider(m.EndTime)
		}
	}
	consider(s.nextDNSDue())
	if !next.IsZero() && next.Before(s.st.Clock) {
		next = s.st.Clock // overdue (a state file from before): due now
	}
	return next
}

// reevaluate derives, at time at, what follows from the world's state at once: DRBD's
// replication links (and through them the file service), the NFS clients' health and the
// alarms. Callers hold s.mu.
func (s *Sim) reevaluate(at time.Time) {
	s.advanceDRBD(at, at)
	s.nfsHealth(at)
	s.evaluateAlarms(at)
}

// advance moves every resource to time t. Transitions are stamped with the moment they were due,
// not the moment somebody looked.
func (s *Sim) advance(t time.Time) {
	last := s.st.Clock
	if t.Before(last) {
		t = last
	}
	for _, id := range sortedKeys(s.st.Instances) {
		in := s.st.Instances[id]
		if in.TransitionAt.IsZero() || in.TransitionAt.After(t) {
			if in.State == stateTerminated && t.Sub(in.StateSince) > terminatedVisible {
				delete(s.st.Instances, id)
				delete(s.st.Hosts, id)
				s.markDirty()
			}
			continue
		}
		at := in.TransitionAt
		in.TransitionAt = time.Time{}
		prev := in.State
		switch in.State {
		case statePending:
			s.setInstanceState(in, stateRunning, at)
			s.bootHost(in, at)
		case stateStopping:
			s.setInstanceState(in, stateStopped, at)
			s.hostDown(in, at)
			if !in.HardwareFailedAt.IsZero() {
				// A stopped instance starts on new hardware: the host fault is gone.
				in.HardwareFailedAt = time.Time{}
				s.resolveFaults(at, "hardware-failure", in.ID)
			}
		case stateShuttingDown:
			s.setInstanceState(in, stateTerminated, at)
			s.hostDown(in, at)
			s.terminateVolumes(in, at)
		}
		if prev != in.State {
			s.markDirty()
		}
	}
	for _, id := range sortedKeys(s.st.Volumes) {
		v := s.st.Volumes[id]
		if v.State == "creating" && !v.ReadyAt.After(t) {
			v.State = "available"
			s.event(v.ReadyAt, "volume.available", v.ID, "volume %s available (%d GiB %s in %s)", v.ID, v.SizeGiB, v.Type, v.Zone)
		}
		if a := v.Attachment; a != nil && !a.ReadyAt.After(t) {
			switch a.State {
			case "attaching":
				a.State = "attached"
				a.Since = a.ReadyAt
				s.event(a.ReadyAt, "volume.attached", v.ID, "volume %s attached to %s as %s", v.ID, a.InstanceID, a.Device)
				s.hostAttached(v, a.ReadyAt)
			case "detaching":
				s.event(a.ReadyAt, "volume.detached", v.ID, "volume %s detached from %s", v.ID, a.InstanceID)
				s.hostDetached(v, a.InstanceID, a.ReadyAt)
				v.Attachment = nil
				v.State = "available"
			}
		}
	}
	for _, id := range sortedKeys(s.st.Mods) {
		m := s.st.Mods[id]
		if m.State == "modifying" && !m.OptimizeAt.After(t) {
			m.State = "optimizing"
			s.event(m.OptimizeAt, "volume.modification.optimizing", m.VolumeID, "volume %s modification optimizing", m.VolumeID)
		}
		if m.State == "optimizing" && !m.EndTime.After(t) {
			m.State = "completed"
			s.event(m.EndTime, "volume.modification.completed", m.VolumeID, "volume %s modification completed", m.VolumeID)
		}
	}
	for _, id := range sortedKeys(s.st.Snapshots) {
		s.advanceSnapshot(s.st.Snapshots[id], t)
	}
	s.advanceDRBD(last, t)
	s.advanceDNS(t)
	for _, id := range sortedKeys(s.st.Commands) {
		c := s.st.Commands[id]
		for _, inv := range c.Invocations {
			if inv.Status == "InProgress" && !inv.EndTime.After(t) {
				inv.Status = inv.FinalStatus
				s.event(inv.EndTime, "ssm.command."+toKebab(inv.Status), inv.InstanceID, "command %s on %s: %s (exit %d)", c.ID, inv.InstanceID, inv.Status, inv.ExitCode)
			}
		}
	}
	if t.After(s.st.Clock) {
		s.st.Clock = t // what is integrated from the clock on (DRBD) starts here next time
	}
}

// advanceSnapshot integrates a snapshot's progress from its last update to t at the rate the
// active faults allow.
func (s *Sim) advanceSnapshot(sn *snapshot, t time.Time) {
	if sn.State != "pending" || !t.After(sn.Updated) {
		return
	}
	rate := sn.Rate * s.snapshotRateFactor(sn)
	dt := t.Sub(sn.Updated).Seconds()
	if rate > 0 && sn.Done+rate*dt >= sn.Total {
		need := (sn.Total - sn.Done) / rate
		at := sn.Updated.Add(time.Duration(need * float64(time.Second))).Truncate(time.Millisecond)
		sn.Done = sn.Total
		sn.Updated = at
		sn.State = "completed"
		sn.DoneTime = at
		if v := s.st.Volumes[sn.VolumeID]; v != nil && sn.SourceSnap == "" {
			v.Snapshotted = true
		}
		s.event(at, "snapshot.completed", sn.ID, "snapshot %s of %s completed (%.1f GiB moved in %s)", sn.ID, sn.VolumeID, sn.Total/gib, at.Sub(sn.StartTime).Round(time.Second))
		return
	}
	sn.Done += rate * dt
	sn.Updated = t
}

func (s *Sim) setInstanceState(in *instance, st string, at time.Time) {
	prev := in.State
	in.State = st
	in.StateSince = at
	s.event(at, "instance."+st, in.ID, "instance %s %s → %s", in.ID, prev, st)
}

// terminateVolumes deletes the volumes marked delete-on-termination and detaches the rest.
func (s *Sim) terminateVolumes(in *instance, at time.Time) {
	for _, id := range sortedKeys(s.st.Volumes) {
		v := s.st.Volumes[id]
		if v.Attachment == nil || v.Attachment.InstanceID != in.ID {
			continue
		}
		if v.DeleteOnTerm {
			delete(s.st.Volumes, id)
			s.event(at, "volume.deleted", id, "volume %s deleted with instance %s", id, in.ID)
			continue
		}
		v.Attachment = nil
		v.State = "available"
		s.event(at, "volume.detached", id, "volume %s detached: instance %s terminated", id, in.ID)
	}
}
