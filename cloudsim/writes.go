// The write model: what the platform writes while it runs, which is what snapshots, DRBD
// bitmaps and resyncs then have to move. Every device in use for data on a running, reachable
// host takes writeRate bytes per second: a Primary DRBD device (through it, the disks of the
// peers it replicates to, and the bitmaps of those away), and a file system mounted from a
// volume or an array of volumes without DRBD (the logs and Dropbox volumes). A Secondary, a
// device nobody mounted, and a stopped or cut-off host write nothing.

package cloudsim

import "time"

// advanceWrites applies the writes of the interval from from to to.
func (s *Sim) advanceWrites(from, to time.Time) {
	dt := to.Sub(from).Seconds()
	if dt <= 0 {
		return
	}
	bytes := writeRate * dt
	for _, hid := range sortedKeys(s.st.Hosts) {
		h := s.st.Hosts[hid]
		in := s.st.Instances[hid]
		if in == nil || !s.reachable(hid) {
			continue
		}
		for _, name := range sortedKeys(h.DRBD) {
			if r := h.DRBD[name]; r.Up && r.Role == "Primary" {
				since := from
				if r.PrimarySince.After(since) {
					since = r.PrimarySince
				}
				s.drbdWrite(r, writeRate*to.Sub(since).Seconds())
				s.markDirty()
			}
		}
		x := &execCtx{s: s, h: h, in: in, now: to}
		for _, mp := range sortedKeys(h.Mounts) {
			if mp == "/" {
				continue
			}
			vols, drbd, ok := x.resolveDevice(h.Mounts[mp].Device)
			if !ok || drbd != nil || len(vols) == 0 {
				continue
			}
			var plain []*volume
			for _, v := range vols {
				if v != nil && !x.drbdHolds(v) && !s.drbdBacked(h, v) {
					plain = append(plain, v)
				}
			}
			if len(plain) != len(vols) {
				continue // an array over DRBD devices: its writes are the Primary's above
			}
			for _, v := range plain {
				v.written(bytes / float64(len(plain)))
			}
			s.markDirty()
		}
	}
}

// drbdBacked is whether v backs a DRBD resource of host h (up or not).
func (s *Sim) drbdBacked(h *host, v *volume) bool {
	for _, r := range h.DRBD {
		if r.VolumeID == v.ID {
			return true
		}
	}
	return false
}
