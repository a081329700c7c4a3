package cloudsim

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
)

func (f *fixture) route53() *route53.Client {
	return route53.New(route53.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.url), Credentials: f.ec2.Options().Credentials,
		HTTPClient: http.DefaultClient, Retryer: fastRetryer()})
}

// privateZone creates a private hosted zone of cloudsim's VPC through the SDK.
func (f *fixture) privateZone(t *testing.T, r53 *route53.Client, name, ref string) string {
	t.Helper()
	out, err := r53.CreateHostedZone(f.ctx, &route53.CreateHostedZoneInput{Name: aws.String(name), CallerReference: aws.String(ref),
		VPC: &r53types.VPC{VPCId: aws.String(VPCID), VPCRegion: r53types.VPCRegionUsEast1}})
	if err != nil {
		t.Fatalf("CreateHostedZone %s: %v", name, err)
	}
	return aws.ToString(out.HostedZone.Id)
}

func upsertA(name string, ttl int64, ips ...string) *r53types.ChangeBatch {
	return changeA(r53types.ChangeActionUpsert, name, ttl, ips...)
}

func changeA(action r53types.ChangeAction, name string, ttl int64, ips ...string) *r53types.ChangeBatch {
	var rr []r53types.ResourceRecord
	for _, ip := range ips {
		rr = append(rr, r53types.ResourceRecord{Value: aws.String(ip)})
	}
	return &r53types.ChangeBatch{Changes: []r53types.Change{{Action: action,
		ResourceRecordSet: &r53types.ResourceRecordSet{Name: aws.String(name), Type: r53types.RRTypeA, TTL: aws.Int64(ttl), ResourceRecords: rr}}}}
}

// TestRoute53ZoneRecordsAndPropagation drives hosted zones and record sets through the SDK's
// route53 client: a private zone has its SOA and NS, a change is PENDING until it has
// propagated (30-60 simulated seconds) and INSYNC after, listings are in Route 53's order and
// page, and UPSERT and DELETE change what ListResourceRecordSets shows at once.
func TestRoute53ZoneRecordsAndPropagation(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	r53 := f.route53()
	zoneID := f.privateZone(t, r53, "Live.Internal", "zone-1")
	if !strings.HasPrefix(zoneID, "/hostedzone/Z") {
		t.Fatalf("zone id %q, want /hostedzone/Z…", zoneID)
	}
	got, err := r53.GetHostedZone(f.ctx, &route53.GetHostedZoneInput{Id: aws.String(zoneID)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.HostedZone.Name) != "live.internal." || !got.HostedZone.Config.PrivateZone || got.DelegationSet != nil ||
		len(got.VPCs) != 1 || aws.ToString(got.VPCs[0].VPCId) != VPCID || aws.ToInt64(got.HostedZone.ResourceRecordSetCount) != 2 {
		t.Fatalf("GetHostedZone: %+v %+v vpcs %+v", got.HostedZone, got.HostedZone.Config, got.VPCs)
	}

	ch, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		ChangeBatch: upsertA("files.live.internal", 60, "10.0.1.10")})
	if err != nil {
		t.Fatal(err)
	}
	if ch.ChangeInfo.Status != r53types.ChangeStatusPending || !strings.HasPrefix(aws.ToString(ch.ChangeInfo.Id), "/change/C") {
		t.Fatalf("ChangeInfo %+v, want a PENDING /change/C…", ch.ChangeInfo)
	}
	f.sim.Advance(dnsPropagationMin - time.Second)
	gc, err := r53.GetChange(f.ctx, &route53.GetChangeInput{Id: ch.ChangeInfo.Id})
	if err != nil || gc.ChangeInfo.Status != r53types.ChangeStatusPending {
		t.Fatalf("GetChange before propagation: %+v %v, want PENDING", gc, err)
	}
	f.sim.Advance(dnsPropagationSpread * time.Second)
	w := route53.NewResourceRecordSetsChangedWaiter(r53, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	})
	if err := w.Wait(f.ctx, &route53.GetChangeInput{Id: ch.ChangeInfo.Id}, 5*time.Second); err != nil {
		t.Fatalf("waiter after propagation: %v", err)
	}

	// A second record sorts after the apex; the listing pages with maxitems.
	if _, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		ChangeBatch: changeA(r53types.ChangeActionCreate, "a.live.internal.", 300, "10.0.1.20", "10.0.1.21")}); err != nil {
		t.Fatal(err)
	}
	var listed []string
	p := route53.NewListResourceRecordSetsPaginator(r53, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID), MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range page.ResourceRecordSets {
			listed = append(listed, string(rs.Type)+" "+aws.ToString(rs.Name)+" "+strings.Join(values(rs), ","))
		}
	}
	if len(listed) != 4 || !strings.HasPrefix(listed[0], "NS live.internal. ns-") || !strings.HasPrefix(listed[1], "SOA live.internal. ns-") ||
		listed[2] != "A a.live.internal. 10.0.1.20,10.0.1.21" || listed[3] != "A files.live.internal. 10.0.1.10" {
		t.Fatalf("ListResourceRecordSets in pages of 2:\n%s", strings.Join(listed, "\n"))
	}
	if _, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		ChangeBatch: changeA(r53types.ChangeActionDelete, "a.live.internal.", 300, "10.0.1.20", "10.0.1.21")}); err != nil {
		t.Fatalf("DELETE with the current values: %v", err)
	}
	out, _ := r53.ListResourceRecordSets(f.ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		StartRecordName: aws.String("files.live.internal."), StartRecordType: r53types.RRTypeA})
	if len(out.ResourceRecordSets) != 1 || aws.ToString(out.ResourceRecordSets[0].Name) != "files.live.internal." {
		t.Fatalf("listing from files.live.internal. A: %+v", out.ResourceRecordSets)
	}

	byName, err := r53.ListHostedZonesByName(f.ctx, &route53.ListHostedZonesByNameInput{DNSName: aws.String("live.internal")})
	if err != nil || len(byName.HostedZones) != 1 || aws.ToString(byName.HostedZones[0].Id) != zoneID {
		t.Fatalf("ListHostedZonesByName: %+v %v", byName, err)
	}
	all, err := r53.ListHostedZones(f.ctx, &route53.ListHostedZonesInput{})
	if err != nil || len(all.HostedZones) != 1 || aws.ToString(all.HostedZones[0].CallerReference) != "zone-1" {
		t.Fatalf("ListHostedZones: %+v %v", all, err)
	}
}

func values(rs r53types.ResourceRecordSet) []string {
	var out []string
	for _, r := range rs.ResourceRecords {
		out = append(out, aws.ToString(r.Value))
	}
	return out
}

// TestRoute53Errors: Route 53's error codes, through the SDK, for what it refuses — and a
// refused batch changes nothing.
func TestRoute53Errors(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	r53 := f.route53()
	zoneID := f.privateZone(t, r53, "live.internal.", "errors-1")
	if _, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		ChangeBatch: upsertA("files.live.internal.", 60, "10.0.1.10")}); err != nil {
		t.Fatal(err)
	}
	change := func(batch *r53types.ChangeBatch) error {
		_, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID), ChangeBatch: batch})
		return err
	}
	tests := []struct {
		name    string
		call    func() error
		code    string
		message string // in the error, or in InvalidChangeBatch's messages
	}{
		{"CREATE of a record that exists", func() error {
			return change(changeA(r53types.ChangeActionCreate, "files.live.internal.", 60, "10.0.1.11"))
		}, "InvalidChangeBatch", "Tried to create resource record set [name='files.live.internal.', type='A'] but it already exists"},
		{"DELETE of a record that does not exist", func() error {
			return change(changeA(r53types.ChangeActionDelete, "nope.live.internal.", 60, "10.0.1.11"))
		}, "InvalidChangeBatch", "but it was not found"},
		{"DELETE with other values", func() error {
			return change(changeA(r53types.ChangeActionDelete, "files.live.internal.", 60, "10.0.9.9"))
		}, "InvalidChangeBatch", "the values provided do not match the current values"},
		{"a name outside the zone", func() error {
			return change(upsertA("files.other.internal.", 60, "10.0.1.11"))
		}, "InvalidChangeBatch", "is not permitted in zone live.internal."},
		{"an A record that is not an IPv4 address", func() error {
			return change(upsertA("x.live.internal.", 60, "not-an-ip"))
		}, "InvalidChangeBatch", "ARRDATAIllegalIPv4Address"},
		{"a record without TTL", func() error {
			b := upsertA("x.live.internal.", 60, "10.0.1.1")
			b.Changes[0].ResourceRecordSet.TTL = nil
			return change(b)
		}, "InvalidInput", "Expected exactly one of"},
		{"deleting the zone's SOA", func() error {
			out, _ := r53.ListResourceRecordSets(f.ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)})
			soa := out.ResourceRecordSets[1]
			return change(&r53types.ChangeBatch{Changes: []r53types.Change{{Action: r53types.ChangeActionDelete, ResourceRecordSet: &soa}}})
		}, "InvalidChangeBatch", "must contain at least one SOA"},
		{"a zone that does not exist", func() error {
			_, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String("/hostedzone/ZNOPE"),
				ChangeBatch: upsertA("x.live.internal.", 60, "10.0.1.1")})
			return err
		}, "NoSuchHostedZone", "No hosted zone found with ID: ZNOPE"},
		{"a change that does not exist", func() error {
			_, err := r53.GetChange(f.ctx, &route53.GetChangeInput{Id: aws.String("/change/CNOPE")})
			return err
		}, "NoSuchChange", "CNOPE"},
		{"a caller reference used before", func() error {
			_, err := r53.CreateHostedZone(f.ctx, &route53.CreateHostedZoneInput{Name: aws.String("other.internal."), CallerReference: aws.String("errors-1")})
			return err
		}, "HostedZoneAlreadyExists", "caller reference"},
		{"a VPC cloudsim does not have", func() error {
			_, err := r53.CreateHostedZone(f.ctx, &route53.CreateHostedZoneInput{Name: aws.String("x.internal."), CallerReference: aws.String("vpc"),
				VPC: &r53types.VPC{VPCId: aws.String("vpc-0123456789abcdef0"), VPCRegion: r53types.VPCRegionUsEast1}})
			return err
		}, "InvalidVPCId", "vpc-0123456789abcdef0"},
		{"the same private zone in the same VPC again", func() error {
			_, err := r53.CreateHostedZone(f.ctx, &route53.CreateHostedZoneInput{Name: aws.String("live.internal"), CallerReference: aws.String("again"),
				VPC: &r53types.VPC{VPCId: aws.String(VPCID), VPCRegion: r53types.VPCRegionUsEast1}})
			return err
		}, "ConflictingDomainExists", "live.internal."},
		{"a zone name that is not a domain name", func() error {
			_, err := r53.CreateHostedZone(f.ctx, &route53.CreateHostedZoneInput{Name: aws.String("bad..name"), CallerReference: aws.String("bad")})
			return err
		}, "InvalidDomainName", "bad..name"},
		{"deleting a zone with records", func() error {
			_, err := r53.DeleteHostedZone(f.ctx, &route53.DeleteHostedZoneInput{Id: aws.String(zoneID)})
			return err
		}, "HostedZoneNotEmpty", "cannot be deleted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if code := apiCode(t, err); code != tc.code {
				t.Fatalf("got %q (%v), want %s", code, err, tc.code)
			}
			text := err.Error()
			var icb *r53types.InvalidChangeBatch
			if errors.As(err, &icb) {
				text = strings.Join(icb.Messages, "\n")
			}
			if !strings.Contains(text, tc.message) {
				t.Fatalf("%s: %q does not say %q", tc.code, text, tc.message)
			}
		})
	}
	out, _ := r53.ListResourceRecordSets(f.ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)})
	if len(out.ResourceRecordSets) != 3 || values(out.ResourceRecordSets[2])[0] != "10.0.1.10" {
		t.Fatalf("refused batches changed the zone: %+v", out.ResourceRecordSets)
	}
}

// TestResolverFollowsPropagationAndTTL: hosts resolve a private zone's names only once its
// name servers have them (the change INSYNC); a host that resolved a name keeps the answer
// for the record's TTL, while one that asks afresh gets the new record once it is INSYNC; a
// name the zone does not have is cached negatively for the SOA's negative TTL (900 s).
func TestResolverFollowsPropagationAndTTL(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	r53 := f.route53()
	web := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	task := f.run(t, "us-east-1a", map[string]string{"anyops:role": "task"})
	f.sim.Advance(bootTime)
	zoneID := f.privateZone(t, r53, "live.internal.", "resolver")
	getent := func(inst string) (string, int32) {
		out, _, code, _ := f.shell(t, inst, "getent hosts files.live.internal")
		ip, _, _ := strings.Cut(out, " ")
		return ip, code
	}
	if _, code := getent(web); code != 2 {
		t.Fatalf("getent before the zone is served: exit %d, want 2", code)
	}
	if _, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		ChangeBatch: upsertA("files.live.internal.", 60, "10.0.1.10")}); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(dnsPropagationMin + dnsPropagationSpread*time.Second)
	// web's negative answer came before the zone was served: from no zone, not cached.
	if ip, code := getent(web); code != 0 || ip != "10.0.1.10" {
		t.Fatalf("getent once INSYNC: %q exit %d", ip, code)
	}
	if _, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		ChangeBatch: upsertA("files.live.internal.", 60, "10.0.2.20")}); err != nil {
		t.Fatal(err)
	}
	if ip, _ := getent(task); ip != "10.0.1.10" {
		t.Fatalf("a fresh lookup before the new change is INSYNC: %q, want the served 10.0.1.10", ip)
	}
	f.sim.Advance(dnsPropagationMin + dnsPropagationSpread*time.Second) // INSYNC, but the TTLs run on
	if ip, _ := getent(web); ip != "10.0.2.20" {
		t.Fatalf("web's answer (more than 60 s old): %q, want the new 10.0.2.20", ip)
	}
	f.sim.Advance(10 * time.Second)
	if ip, _ := getent(task); ip != "10.0.2.20" {
		t.Fatalf("task's answer, more than its TTL old: %q, want 10.0.2.20", ip)
	}

	// Cached for the TTL: a third record change is not seen by web until 60 s after it asked.
	f.sim.Advance(time.Minute) // web's answer of before has expired
	if _, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		ChangeBatch: upsertA("files.live.internal.", 60, "10.0.3.30")}); err != nil {
		t.Fatal(err)
	}
	getent(web) // caches 10.0.2.20 now
	f.sim.Advance(59 * time.Second)
	if ip, _ := getent(web); ip != "10.0.2.20" {
		t.Fatalf("59 s into a 60 s TTL: %q, want the cached 10.0.2.20", ip)
	}
	f.sim.Advance(time.Minute)
	if ip, _ := getent(web); ip != "10.0.3.30" {
		t.Fatalf("after the TTL and INSYNC: %q, want 10.0.3.30", ip)
	}

	// NXDOMAIN from the zone is cached for 900 s: a record made later is not seen before.
	if _, code := f.shellCode(t, web, "getent hosts later.live.internal"); code != 2 {
		t.Fatalf("an unknown name: exit %d, want 2", code)
	}
	if _, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		ChangeBatch: upsertA("later.live.internal.", 60, "10.0.4.40")}); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(2 * time.Minute)
	if _, code := f.shellCode(t, web, "getent hosts later.live.internal"); code != 2 {
		t.Fatalf("within the negative TTL: exit %d, want 2 (cached NXDOMAIN)", code)
	}
	f.sim.Advance(soaTTL * time.Second)
	if out, code := f.shellCode(t, web, "getent hosts later.live.internal"); code != 0 || !strings.HasPrefix(out, "10.0.4.40") {
		t.Fatalf("after the negative TTL: %q exit %d", out, code)
	}
	taskIP := aws.ToString(f.instance(t, task).PrivateIpAddress)
	if out, code := f.shellCode(t, web, "getent hosts ip-"+dashIP(taskIP)+".ec2.internal"); code != 0 || !strings.HasPrefix(out, taskIP) {
		t.Fatalf("EC2's own name of task: %q exit %d", out, code)
	}
}

func (f *fixture) shellCode(t *testing.T, inst, script string) (string, int32) {
	t.Helper()
	out, _, code, _ := f.shell(t, inst, script)
	return out, code
}

// TestRoute53ChangesOfOneZoneSyncInOrder: a later change never becomes INSYNC before an
// earlier one of the same zone, so the name servers never serve an older record last.
func TestRoute53ChangesOfOneZoneSyncInOrder(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	r53 := f.route53()
	zoneID := f.privateZone(t, r53, "order.internal.", "order")
	var ids []string
	for i := range 20 {
		out, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
			ChangeBatch: upsertA("x.order.internal.", 60, "10.0.0."+string(rune('1'+i%9)))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimPrefix(aws.ToString(out.ChangeInfo.Id), "/change/"))
		f.sim.Advance(time.Second)
	}
	f.sim.mu.Lock()
	defer f.sim.mu.Unlock()
	at := slices.Collect(func(yield func(time.Time) bool) {
		for _, id := range ids {
			if !yield(f.sim.st.DNSChanges[id].InSyncAt) {
				return
			}
		}
	})
	if !slices.IsSortedFunc(at, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Fatalf("INSYNC times out of order: %v", at)
	}
}
