package cloudsim

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRoute53Request sends arbitrary bodies to CreateHostedZone and then to
// ChangeResourceRecordSets of the zone it made (or of a fixed one): the answer is always
// well-formed XML, never a 5xx; an error is never a 2xx, and a refused batch changes no record.
// Corpus: testdata/fuzz/FuzzRoute53Request.
func FuzzRoute53Request(f *testing.F) {
	ns := `xmlns="` + route53Namespace + `"`
	for _, seed := range [][2]string{
		{`<CreateHostedZoneRequest ` + ns + `><Name>live.internal</Name><CallerReference>r1</CallerReference><VPC><VPCRegion>us-east-1</VPCRegion><VPCId>` + VPCID + `</VPCId></VPC></CreateHostedZoneRequest>`,
			`<ChangeResourceRecordSetsRequest ` + ns + `><ChangeBatch><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>files.live.internal</Name><Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>10.0.1.10</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`},
		{`<CreateHostedZoneRequest ` + ns + `><Name>*.x</Name><CallerReference>r</CallerReference></CreateHostedZoneRequest>`,
			`<ChangeResourceRecordSetsRequest ` + ns + `><ChangeBatch><Changes><Change><Action>DELETE</Action><ResourceRecordSet><Name>x</Name><Type>SOA</Type><TTL>1</TTL><ResourceRecords><ResourceRecord><Value>v</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`},
		{`<CreateHostedZoneRequest><Name>a.b</Name><CallerReference>r</CallerReference></CreateHostedZoneRequest>`, `<x/><y/>`},
		{`<CreateHostedZoneRequest ` + ns + `><Name>a.b</Name><CallerReference>r</CallerReference><HostedZoneConfig><PrivateZone>true</PrivateZone></HostedZoneConfig></CreateHostedZoneRequest>`,
			`<ChangeResourceRecordSetsRequest ` + ns + `><ChangeBatch><Changes><Change><Action>CREATE</Action><ResourceRecordSet><Name>c.a.b</Name><Type>CNAME</Type><TTL>5</TTL><ResourceRecords><ResourceRecord><Value>a.b</Value></ResourceRecord><ResourceRecord><Value>b.c</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`},
		{"", ""},
		{"<", "<ChangeResourceRecordSetsRequest " + ns + "><ChangeBatch><Changes></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, createBody, changeBody string) {
		s, err := New(Config{Speed: frozen})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		h := s.Handler()
		send := func(method, path, body string) (int, string) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
			if rec.Code >= 500 {
				t.Fatalf("%s %s: status %d for %q: %s", method, path, rec.Code, body, rec.Body.String())
			}
			var doc struct {
				XMLName xml.Name
				Zone    string `xml:"HostedZone>Id"`
			}
			if err := xml.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("%s %s: not XML for %q: %v\n%s", method, path, body, err, rec.Body.String())
			}
			isErr := doc.XMLName.Local == "ErrorResponse" || doc.XMLName.Local == "InvalidChangeBatch"
			if isErr != (rec.Code >= 300) {
				t.Fatalf("%s %s: status %d with document %s for %q", method, path, rec.Code, doc.XMLName.Local, body)
			}
			return rec.Code, doc.Zone
		}
		zone := "/hostedzone/ZNONE"
		if code, id := send(http.MethodPost, "/2013-04-01/hostedzone", createBody); code == http.StatusCreated {
			zone = id
		}
		s.mu.Lock()
		before := 0
		if z := s.st.Zones[strings.TrimPrefix(zone, "/hostedzone/")]; z != nil {
			before = len(z.Records)
		}
		s.mu.Unlock()
		code, _ := send(http.MethodPost, "/2013-04-01"+zone+"/rrset/", changeBody)
		s.mu.Lock()
		if z := s.st.Zones[strings.TrimPrefix(zone, "/hostedzone/")]; z != nil && code != http.StatusOK && len(z.Records) != before {
			t.Fatalf("a refused batch (%d) changed the zone: %d → %d records", code, before, len(z.Records))
		}
		s.mu.Unlock()
		send(http.MethodGet, "/2013-04-01"+zone+"/rrset?maxitems=1", "")
		s.Advance(time.Minute)
	})
}
