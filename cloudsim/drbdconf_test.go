package cloudsim

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// drbdPairConf is a resource file as the host activities write it.
const drbdPairConf = `# written by anyops
resource home0 {
  device /dev/drbd0;
  disk /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0;
  meta-disk internal;
  net { protocol C; }
  on ip-10-0-1-10 {
    node-id 0;
    address 10.0.1.10:7789;
  }
  on ip-10-0-1-11 {
    node-id 1;
    address 10.0.1.11:7789;
  }
  connection-mesh {
    hosts ip-10-0-1-10 ip-10-0-1-11;
  }
}
`

// TestDRBDConfigParse proves the parser reads DRBD 9 resource files in the forms drbd.conf(5)
// gives — inherited and per-host devices, volume sections, quoted strings, connection and
// connection-mesh sections, option sections it ignores — and refuses with a line number what
// is wrong or what the simulation does not model.
func TestDRBDConfigParse(t *testing.T) {
	pair := []drbdOn{
		{Names: []string{"ip-10-0-1-10"}, NodeID: 0, Address: "10.0.1.10:7789", Minor: 0, Disk: "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0", MetaDisk: "internal"},
		{Names: []string{"ip-10-0-1-11"}, NodeID: 1, Address: "10.0.1.11:7789", Minor: 0, Disk: "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0", MetaDisk: "internal"},
	}
	good := []struct {
		name string
		src  string
		want []drbdOn
	}{
		{"the activities' form", drbdPairConf, pair},
		{"the man page's example: volume section, quoted names, connection with ports", `
global { usage-count yes; udev-always-use-vnr; }
resource r0 {
      net { cram-hmac-alg sha1; shared-secret "FooFunFactory"; }
      volume 0 { device "/dev/drbd1"; disk "/dev/sda7"; meta-disk internal; }
      on "alice" { node-id 0; address 10.1.1.31:7000; }
      on "bob" { node-id 1; address ipv4 10.1.1.32:7000; }
      connection { host "alice" port 7000; host "bob" port 7000; net { protocol C; } }
}`, []drbdOn{
			{Names: []string{"alice"}, NodeID: 0, Address: "10.1.1.31:7000", Minor: 1, Disk: "/dev/sda7", MetaDisk: "internal"},
			{Names: []string{"bob"}, NodeID: 1, Address: "10.1.1.32:7000", Minor: 1, Disk: "/dev/sda7", MetaDisk: "internal"},
		}},
		{"per-host disks, device minor form, no connection section (implicit for two hosts)", `resource r1 {
  meta-disk internal;
  device minor 3;
  on a { node-id 0; address 10.0.0.1:7790; disk /dev/nvme1n1; }
  on b { node-id 1; address 10.0.0.2:7790; disk /dev/xvdf; device /dev/drbd4 minor 4; }
  skip { this is ignored; }
}`, []drbdOn{
			{Names: []string{"a"}, NodeID: 0, Address: "10.0.0.1:7790", Minor: 3, Disk: "/dev/nvme1n1", MetaDisk: "internal"},
			{Names: []string{"b"}, NodeID: 1, Address: "10.0.0.2:7790", Minor: 4, Disk: "/dev/xvdf", MetaDisk: "internal"},
		}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseDRBDFile("test.res", tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Resources) != 1 || !reflect.DeepEqual(f.Resources[0].Hosts, tc.want) {
				t.Fatalf("parsed %+v\nwant hosts %+v", f.Resources, tc.want)
			}
			again, err := parseDRBDFile("again.res", formatDRBDConf(f.Resources[0]))
			if err != nil || !reflect.DeepEqual(again.Resources[0].Hosts, tc.want) {
				t.Fatalf("format/parse round trip: %v\n%s", err, formatDRBDConf(f.Resources[0]))
			}
		})
	}
	if f, err := parseDRBDFile("/etc/drbd.conf", baseFiles["/etc/drbd.conf"]); err != nil || !reflect.DeepEqual(f.Includes, []string{"drbd.d/global_common.conf", "drbd.d/*.res"}) {
		t.Fatalf("the image's drbd.conf: %+v %v", f, err)
	}
	if _, err := parseDRBDFile("global_common.conf", baseFiles["/etc/drbd.d/global_common.conf"]); err != nil {
		t.Fatalf("the image's global_common.conf: %v", err)
	}

	one := func(body string) string {
		return "resource r {\n device /dev/drbd0; disk /dev/xvdf; meta-disk internal;\n" + body + "\n}\n"
	}
	hosts := "on a { node-id 0; address 10.0.0.1:7789; }\non b { node-id 1; address 10.0.0.2:7789; }"
	bad := []struct{ name, src, errPart string }{
		{"missing semicolon", "resource r { device /dev/drbd0 }", "test.res:1: parse error: missing ';'"},
		{"unbalanced brace", "resource r {\n device /dev/drbd0;\n", "unexpected end of file"},
		{"stray brace", "}", "'}' unexpected"},
		{"unterminated string", `resource "r {`, "unterminated quoted string"},
		{"unknown keyword", one(hosts + "\nfrobnicate yes;"), `test.res:5: parse error: "frobnicate" unexpected`},
		{"no node-id", one("on a { address 10.0.0.1:7789; }"), "node-id is missing"},
		{"no address", one("on a { node-id 0; }"), "address is missing"},
		{"bad address", one("on a { node-id 0; address 10.0.0.1; }"), "not an IPv4 address:port"},
		{"ipv6", one("on a { node-id 0; address ipv6 [fd01::1]:7789; }"), "other families are not simulated"},
		{"node-id out of range", one("on a { node-id 32; address 10.0.0.1:7789; }"), "node-id wants a number"},
		{"same node-id twice", one("on a { node-id 0; address 10.0.0.1:7789; }\non b { node-id 0; address 10.0.0.2:7789; }"), "node-id 0 is used twice"},
		{"same address twice", one("on a { node-id 0; address 10.0.0.1:7789; }\non b { node-id 1; address 10.0.0.1:7789; }"), "address 10.0.0.1:7789 is used twice"},
		{"three hosts", one(hosts + "\non c { node-id 2; address 10.0.0.3:7789; }"), "more than two hosts are not simulated"},
		{"external meta-disk", "resource r { device /dev/drbd0; disk /dev/xvdf; meta-disk /dev/xvdg; " + hosts + " }", "only internal meta data is simulated"},
		{"second volume", "resource r { volume 1 { device /dev/drbd1; } " + hosts + " }", "only one volume (0) per resource"},
		{"no device", "resource r { disk /dev/xvdf; meta-disk internal; " + hosts + " }", "no device defined or inherited"},
		{"device not drbd", one(hosts + "\ndevice /dev/sda;"), "device wants /dev/drbd<minor>"},
		{"mesh names a stranger", one(hosts + "\nconnection-mesh { hosts a c; }"), "connection to c: no on section"},
		{"connection of a host to itself", one(hosts + "\nconnection { host a; host a; }"), "no connection between its two hosts"},
		{"connection paths", one(hosts + "\nconnection { path { host a; host b; } host a; host b; }"), "connection paths are not simulated"},
		{"floating", one("floating 10.0.0.1:7789 { node-id 0; }"), "floating resources are not simulated"},
		{"bad resource name", "resource a/b { }", "resource name"},
		{"include inside a resource", one("include \"x\";"), `"include" unexpected`},
	}
	for _, tc := range bad {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, err := parseDRBDFile("test.res", tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("error %v, want one containing %q", err, tc.errPart)
			}
		})
	}
}

// formatDRBDConf writes a parsed resource back in the canonical form, every value explicit.
func formatDRBDConf(r *drbdConf) string {
	var b strings.Builder
	quote := func(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }
	fmt.Fprintf(&b, "resource %s {\n", quote(r.Name))
	if r.AllowTwoPrimaries {
		b.WriteString("  net { allow-two-primaries yes; }\n")
	}
	for _, h := range r.Hosts {
		fmt.Fprintf(&b, "  on")
		for _, n := range h.Names {
			b.WriteString(" " + quote(n))
		}
		fmt.Fprintf(&b, " {\n    node-id %d;\n    address %s;\n    device minor %d;\n    disk %s;\n    meta-disk %s;\n  }\n", h.NodeID, h.Address, h.Minor, quote(h.Disk), h.MetaDisk)
	}
	b.WriteString("}\n")
	return b.String()
}

// FuzzDRBDConfig: whatever a resource file holds, the parser does not panic, and what it
// accepts is a resource the simulation can run — a valid name, one or two hosts with distinct
// node ids and addresses, IPv4 addresses, device minors in range, a /dev disk, internal meta
// data — that survives a format/parse round trip unchanged.
// Corpus: testdata/fuzz/FuzzDRBDConfig.
func FuzzDRBDConfig(f *testing.F) {
	f.Add(drbdPairConf)
	f.Add(baseFiles["/etc/drbd.conf"])
	f.Add(baseFiles["/etc/drbd.d/global_common.conf"])
	f.Add("resource r { device minor 1; disk \"/dev/x\"; meta-disk internal; on a b { node-id 3; address ipv4 1.2.3.4:5; } }")
	f.Add("resource r { volume 0 { device /dev/drbd2; } on a { node-id 0; address 1.1.1.1:1; disk /dev/a; meta-disk internal; } skip { } }")
	f.Add("include \"drbd.d/*.res\";\n# comment\nresource \"q\\\"x\" {")
	f.Fuzz(func(t *testing.T, src string) {
		parsed, err := parseDRBDFile("fuzz.res", src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.res:") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, r := range parsed.Resources {
			if !reResName.MatchString(r.Name) || len(r.Hosts) == 0 || len(r.Hosts) > 2 {
				t.Fatalf("accepted resource %+v", r)
			}
			ids, addrs := map[int]bool{}, map[string]bool{}
			for _, h := range r.Hosts {
				ap, err := netip.ParseAddrPort(h.Address)
				if err != nil || !ap.Addr().Is4() || ids[h.NodeID] || addrs[h.Address] || h.NodeID < 0 || h.NodeID > 31 ||
					h.Minor < 0 || h.Minor > 1048575 || !strings.HasPrefix(h.Disk, "/dev/") || h.MetaDisk != "internal" || len(h.Names) == 0 {
					t.Fatalf("accepted host %+v in %s", h, r.Name)
				}
				ids[h.NodeID], addrs[h.Address] = true, true
			}
			again, err := parseDRBDFile("again.res", formatDRBDConf(r))
			if err != nil {
				t.Fatalf("formatted resource does not parse: %v\n%s", err, formatDRBDConf(r))
			}
			if len(again.Resources) != 1 || !reflect.DeepEqual(again.Resources[0].Hosts, r.Hosts) || again.Resources[0].Name != r.Name {
				t.Fatalf("round trip changed %+v into %+v", r, again.Resources)
			}
		}
	})
}
