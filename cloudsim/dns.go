// DNS: Route 53's hosted zones as a world model — records, changes that reach the name
// servers only when they are INSYNC, and the resolver the simulated hosts ask (private zones
// of the one VPC, an answer cached for its TTL). The wire protocol is in route53.go.

package cloudsim

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// VPCID is the one VPC of the simulated region: every instance is in it, and a private hosted
// zone must be associated with it to be resolved by the hosts.
const VPCID = "vpc-0c1a0d5e11a7e0001"

// Propagation: a change is INSYNC (on every Route 53 name server) this long after it was
// submitted, as Route 53 reports within a minute; the name servers answer with it from then on.
const (
	dnsPropagationMin    = 30 * time.Second
	dnsPropagationSpread = 31 // seconds added on top, 0..30, by the change id
)

// The records every new zone has, as Route 53 makes them.
const (
	soaTTL      = 900
	nsTTL       = 172800
	soaMinimum  = 86400 // the SOA's minimum field; negative answers are cached min(soaTTL, it)
	soaTemplate = "%s awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"
)

type hostedZone struct {
	ID        string    `json:"id"`   // Z…, without the /hostedzone/ prefix
	Name      string    `json:"name"` // lower case, with the trailing dot
	CallerRef string    `json:"caller_reference"`
	Comment   string    `json:"comment,omitempty"`
	Private   bool      `json:"private"`
	VPCs      []zoneVPC `json:"vpcs,omitempty"`
	Created   time.Time `json:"created"`
	ChangeID  string    `json:"change_id"` // the creation's change: the zone is served once it is INSYNC
	// Records are what the API shows; Served what the name servers answer (the changes that
	// are INSYNC applied, in order); Pending the change ids applied to Records but not yet
	// to Served.
	Records []*rrset `json:"records"`
	Served  []*rrset `json:"served"`
	Pending []string `json:"pending,omitempty"`
}

type zoneVPC struct {
	Region string `json:"region"`
	ID     string `json:"id"`
}

// rrset is a resource record set of simple routing.
type rrset struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	TTL    int64    `json:"ttl"`
	Values []string `json:"values"`
}

func (r *rrset) clone() *rrset {
	c := *r
	c.Values = slices.Clone(r.Values)
	return &c
}

type rrChange struct {
	Action string `json:"action"` // CREATE, UPSERT, DELETE
	Set    rrset  `json:"set"`
}

// dnsChange is one ChangeInfo: a change batch, or a zone's creation or deletion.
type dnsChange struct {
	ID        string     `json:"id"` // C…, without the /change/ prefix
	ZoneID    string     `json:"zone_id"`
	Comment   string     `json:"comment,omitempty"`
	Submitted time.Time  `json:"submitted"`
	InSyncAt  time.Time  `json:"insync_at"`
	Status    string     `json:"status"` // PENDING, INSYNC
	Changes   []rrChange `json:"changes,omitempty"`
}

// route53ID is a Route 53 style id: the prefix letter and 20 upper-case letters and digits,
// deterministic in the seed and the counter.
func (st *state) route53ID(prefix string) string {
	st.Counter++
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/route53/%s", st.Seed, st.Counter, prefix)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	v := h.Sum64()
	var b strings.Builder
	b.WriteString(prefix)
	for i := 0; i < 20; i++ {
		b.WriteByte(alphabet[v%36])
		v = v/36 ^ uint64(i+1)*0x9e3779b97f4a7c15
	}
	return b.String()
}

// newDNSChange records a change submitted at now. Changes of one zone become INSYNC in the
// order they were submitted.
func (s *Sim) newDNSChange(z *hostedZone, comment string, changes []rrChange, now time.Time) *dnsChange {
	id := s.st.route53ID("C")
	h := fnv.New32a()
	h.Write([]byte(id))
	at := now.Add(dnsPropagationMin + time.Duration(h.Sum32()%dnsPropagationSpread)*time.Second)
	for _, pid := range z.Pending {
		if p := s.st.DNSChanges[pid]; p != nil && p.InSyncAt.After(at) {
			at = p.InSyncAt
		}
	}
	c := &dnsChange{ID: id, ZoneID: z.ID, Comment: comment, Submitted: now, InSyncAt: at, Status: "PENDING", Changes: changes}
	s.st.DNSChanges[id] = c
	z.Pending = append(z.Pending, id)
	s.pruneDNSChanges(now)
	return c
}

// pruneDNSChanges forgets INSYNC changes older than a simulated day.
func (s *Sim) pruneDNSChanges(now time.Time) {
	for id, c := range s.st.DNSChanges {
		if c.Status == "INSYNC" && now.Sub(c.Submitted) > 24*time.Hour {
			delete(s.st.DNSChanges, id)
		}
	}
}

// advanceDNS applies to the name servers every change that is INSYNC by t.
func (s *Sim) advanceDNS(t time.Time) {
	for _, zid := range sortedKeys(s.st.Zones) {
		z := s.st.Zones[zid]
		for len(z.Pending) > 0 {
			c := s.st.DNSChanges[z.Pending[0]]
			if c != nil && c.InSyncAt.After(t) {
				break
			}
			z.Pending = z.Pending[1:]
			if c == nil {
				continue
			}
			z.Served = applyChanges(z.Served, c.Changes)
			c.Status = "INSYNC"
			s.event(c.InSyncAt, "route53.change.insync", z.ID, "change %s of zone %s (%s) is INSYNC", c.ID, z.ID, z.Name)
			s.markDirty()
		}
	}
}

// nextDNSDue is the earliest time a pending change becomes INSYNC, zero when none is pending.
func (s *Sim) nextDNSDue() time.Time {
	var next time.Time
	for _, z := range s.st.Zones {
		if len(z.Pending) == 0 {
			continue
		}
		if c := s.st.DNSChanges[z.Pending[0]]; c != nil && (next.IsZero() || c.InSyncAt.Before(next)) {
			next = c.InSyncAt
		}
	}
	return next
}

// applyChanges returns records with validated changes applied.
func applyChanges(records []*rrset, changes []rrChange) []*rrset {
	out := make([]*rrset, 0, len(records)+len(changes))
	for _, r := range records {
		out = append(out, r.clone())
	}
	for _, c := range changes {
		i := slices.IndexFunc(out, func(r *rrset) bool { return r.Name == c.Set.Name && r.Type == c.Set.Type })
		switch {
		case c.Action == "DELETE" && i >= 0:
			out = slices.Delete(out, i, i+1)
		case c.Action == "DELETE":
		case i >= 0:
			out[i] = c.Set.clone()
		default:
			out = append(out, c.Set.clone())
		}
	}
	return out
}

// normalizeName is a DNS name as Route 53 keeps it: lower case, with the trailing dot. ok is
// false for a name that is not one.
func normalizeName(name string) (string, bool) {
	n := strings.ToLower(strings.TrimSuffix(name, "."))
	if n == "" || len(n) > 253 {
		return "", false
	}
	for i, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		if label == "*" && i == 0 {
			continue
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return n + ".", true
}

// inZone is whether name (normalized) is the zone's apex or below it.
func inZone(name, zone string) bool { return name == zone || strings.HasSuffix(name, "."+zone) }

// reversedLabels sorts names as Route 53 lists them: by their labels from the right.
func reversedLabels(name string) string {
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

// sortRecords orders record sets as ListResourceRecordSets does: by name with its labels
// reversed, then by type.
func sortRecords(rs []*rrset) {
	slices.SortStableFunc(rs, func(a, b *rrset) int {
		if c := strings.Compare(reversedLabels(a.Name), reversedLabels(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.Type, b.Type)
	})
}

// dnsAnswer is a host's cached answer for a name: the addresses (none: the name does not
// resolve) and until when it may be used.
type dnsAnswer struct {
	IPs   []string  `json:"ips,omitempty"`
	Until time.Time `json:"until"`
}

// resolve answers a host's lookup of name at time at, as the VPC's resolver does: an IPv4
// literal is itself; a cached answer is used until its TTL runs out; otherwise the most
// specific private zone of the VPC that holds the name answers, with what its name servers
// serve at that moment (CNAMEs followed), and EC2's own ip-a-b-c-d names resolve to the
// instance holding the address. A negative answer is cached for the zone's SOA negative TTL.
func (s *Sim) resolve(h *host, name string, at time.Time) []string {
	if ip, err := netip.ParseAddr(name); err == nil && ip.Is4() {
		return []string{ip.String()}
	}
	key, ok := normalizeName(name)
	if !ok {
		return nil
	}
	if h.DNSCache == nil {
		h.DNSCache = map[string]dnsAnswer{}
	}
	if a, cached := h.DNSCache[key]; cached && at.Before(a.Until) {
		return a.IPs
	}
	ips, ttl := s.lookup(key, at, 0)
	h.DNSCache[key] = dnsAnswer{IPs: ips, Until: at.Add(time.Duration(ttl) * time.Second)}
	s.markDirty()
	return ips
}

// lookup asks the name servers for name's addresses at time at; it returns them (none when
// the name does not resolve) with the TTL to cache the answer for.
func (s *Sim) lookup(name string, at time.Time, depth int) ([]string, int64) {
	if depth > 8 {
		return nil, 0
	}
	z := s.zoneFor(name, at)
	if z == nil {
		return s.ec2Name(name), 0
	}
	records := s.servedAt(z, at)
	negative := int64(soaTTL)
	for _, r := range records {
		if r.Name == z.Name && r.Type == "SOA" {
			negative = min(r.TTL, soaMinimum)
		}
	}
	sets := recordsAt(records, name, z.Name)
	for _, r := range sets {
		switch r.Type {
		case "A":
			return slices.Clone(r.Values), r.TTL
		case "CNAME":
			target, _ := normalizeName(r.Values[0])
			ips, ttl := s.lookup(target, at, depth+1)
			return ips, min(ttl, r.TTL)
		}
	}
	return nil, negative
}

// recordsAt are the record sets answering for name in a zone's records: its own, else those
// of the closest wildcard above it, as a name server matches them.
func recordsAt(records []*rrset, name, zone string) []*rrset {
	match := func(n string) []*rrset {
		var out []*rrset
		for _, r := range records {
			if r.Name == n {
				out = append(out, r)
			}
		}
		return out
	}
	if own := match(name); len(own) > 0 {
		return own
	}
	for n := name; n != zone && strings.Contains(n, "."); {
		_, parent, _ := strings.Cut(n, ".")
		if parent == "" || !inZone(parent, zone) {
			break
		}
		if wild := match("*." + parent); len(wild) > 0 {
			return wild
		}
		n = parent
	}
	return nil
}

// zoneFor is the most specific private zone of the VPC that holds name and is served at at.
func (s *Sim) zoneFor(name string, at time.Time) *hostedZone {
	var best *hostedZone
	for _, zid := range sortedKeys(s.st.Zones) {
		z := s.st.Zones[zid]
		if !z.Private || !slices.Contains(z.VPCs, zoneVPC{Region: s.cfg.Region, ID: VPCID}) || !inZone(name, z.Name) {
			continue
		}
		if c := s.st.DNSChanges[z.ChangeID]; c != nil && c.InSyncAt.After(at) {
			continue // its name servers do not know it yet
		}
		if best == nil || len(z.Name) > len(best.Name) {
			best = z
		}
	}
	return best
}

// servedAt is what a zone's name servers answer at time at: what is INSYNC by then.
func (s *Sim) servedAt(z *hostedZone, at time.Time) []*rrset {
	out := z.Served
	for _, id := range z.Pending {
		c := s.st.DNSChanges[id]
		if c == nil || c.InSyncAt.After(at) {
			break
		}
		out = applyChanges(out, c.Changes)
	}
	return out
}

// ec2Name resolves EC2's private DNS names (ip-10-0-1-10, ip-10-0-1-10.ec2.internal) to the
// live instance that holds the address.
func (s *Sim) ec2Name(name string) []string {
	first, rest, _ := strings.Cut(strings.TrimSuffix(name, "."), ".")
	if rest != "" && rest != "ec2.internal" && rest != s.cfg.Region+".compute.internal" {
		return nil
	}
	dashed, ok := strings.CutPrefix(first, "ip-")
	if !ok {
		return nil
	}
	ip := strings.ReplaceAll(dashed, "-", ".")
	if in := s.instanceByIP(ip); in != nil {
		return []string{ip}
	}
	return nil
}

// cmdGetent is getent(1) for the hosts database: one line per address, exit 2 when the name
// does not resolve.
func cmdGetent(x *execCtx, args []string, _ string) result {
	if len(args) < 2 || (args[0] != "hosts" && args[0] != "ahosts") {
		return fail(1, "getent: only `getent hosts NAME...` is simulated")
	}
	var b strings.Builder
	for _, name := range args[1:] {
		ips := x.s.resolve(x.h, name, x.now)
		if len(ips) == 0 {
			return result{out: b.String(), code: 2}
		}
		for _, ip := range ips {
			fmt.Fprintf(&b, "%-15s %s\n", ip, strings.TrimSuffix(name, "."))
		}
	}
	return ok(b.String())
}

// validIPv4 is what Route 53 takes as an A record's value.
func validIPv4(v string) bool {
	ip, err := netip.ParseAddr(v)
	return err == nil && ip.Is4() && ip.String() == v
}
