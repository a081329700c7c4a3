package activities

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The sample from the design: a resync in progress, then a backup whose peer is gone.
const drbdSample = `home0 role:Primary
  disk:UpToDate
  peer role:Secondary
    replication:SyncSource peer-disk:Inconsistent done:42.17

home0 role:Secondary
  disk:UpToDate
  peer connection:Connecting
`

// TestCloudDRBDStatusParse proves the parser reads what DRBD 9 prints in the states the
// failover and migration workflows decide on, and refuses output it cannot read.
func TestCloudDRBDStatusParse(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []DRBDResource
		sync []bool // InSync of each resource
	}{
		{
			name: "design sample: syncing, then a peer connecting",
			in:   drbdSample,
			want: []DRBDResource{
				{Name: "home0", Role: "Primary", Disk: "UpToDate",
					Volumes: []DRBDVolume{{0, "UpToDate"}},
					Peers: []DRBDPeer{{Name: "peer", Role: "Secondary", Connection: "Connected",
						Replication: "SyncSource", PeerDisk: "Inconsistent", Done: 42.17,
						PeerVolumes: []DRBDPeerVolume{{Number: 0, Replication: "SyncSource", PeerDisk: "Inconsistent", Done: 42.17}}}}},
				{Name: "home0", Role: "Secondary", Disk: "UpToDate",
					Volumes: []DRBDVolume{{0, "UpToDate"}},
					Peers:   []DRBDPeer{{Name: "peer", Connection: "Connecting", Replication: "Off"}}},
			},
			sync: []bool{false, false},
		},
		{
			name: "healthy pair: drbdadm omits replication:Established",
			in:   "logs role:Primary\n  disk:UpToDate\n  backup-1 role:Secondary\n    peer-disk:UpToDate\n",
			want: []DRBDResource{{Name: "logs", Role: "Primary", Disk: "UpToDate",
				Volumes: []DRBDVolume{{0, "UpToDate"}},
				Peers: []DRBDPeer{{Name: "backup-1", Role: "Secondary", Connection: "Connected",
					Replication: "Established", PeerDisk: "UpToDate",
					PeerVolumes: []DRBDPeerVolume{{Number: 0, Replication: "Established", PeerDisk: "UpToDate"}}}}}},
			sync: []bool{true},
		},
		{
			name: "two volumes, one still syncing, unknown keys and CRLF skipped",
			in: "r0 role:Primary suspended:no\r\n  volume:0 disk:UpToDate\r\n  volume:1 disk:UpToDate quorum:yes\r\n" +
				"  b role:Secondary congested:no\r\n    volume:0 peer-disk:UpToDate\r\n    volume:1 replication:SyncSource peer-disk:Inconsistent done:3.5 eta:120\r\n",
			want: []DRBDResource{{Name: "r0", Role: "Primary", Disk: "UpToDate",
				Volumes: []DRBDVolume{{0, "UpToDate"}, {1, "UpToDate"}},
				Peers: []DRBDPeer{{Name: "b", Role: "Secondary", Connection: "Connected",
					Replication: "Established", PeerDisk: "UpToDate",
					PeerVolumes: []DRBDPeerVolume{{Number: 0, Replication: "Established", PeerDisk: "UpToDate"}, {Number: 1, Replication: "SyncSource", PeerDisk: "Inconsistent", Done: 3.5}}}}}},
			sync: []bool{false},
		},
		{
			name: "verbose statistics, wrapped: each peer device's out-of-sync",
			in: "home0 node-id:0 role:Primary suspended:no\n    write-ordering:flush\n  volume:0 minor:0 disk:UpToDate quorum:yes\n" +
				"      size:104857600 read:0 written:0 al-writes:0 bm-writes:0 upper-pending:0\n      lower-pending:0 al-suspended:no blocked:no\n" +
				"  ip-10-0-64-9 node-id:1 connection:Connecting role:Unknown congested:no\n    volume:0 replication:Off peer-disk:DUnknown resync-suspended:no\n" +
				"        received:0 sent:0 out-of-sync:3072000 pending:0 unacked:0\n\n",
			want: []DRBDResource{{Name: "home0", Role: "Primary", Disk: "UpToDate", Volumes: []DRBDVolume{{0, "UpToDate"}},
				Peers: []DRBDPeer{{Name: "ip-10-0-64-9", Role: "Unknown", Connection: "Connecting", Replication: "Off", PeerDisk: "DUnknown",
					PeerVolumes: []DRBDPeerVolume{{Number: 0, Replication: "Off", PeerDisk: "DUnknown", OutOfSyncKiB: 3072000}}}}}},
			sync: []bool{false},
		},
		{
			name: "standalone without a peer is not in sync",
			in:   "dropbox role:Primary\n  disk:UpToDate\n",
			want: []DRBDResource{{Name: "dropbox", Role: "Primary", Disk: "UpToDate", Volumes: []DRBDVolume{{0, "UpToDate"}}}},
			sync: []bool{false},
		},
		{name: "empty output: no resources", in: "\n\n", want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDRBDStatus(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			for i, r := range got {
				require.Equal(t, tc.sync[i], r.InSync(), "InSync of resource %d", i)
			}
			again, err := ParseDRBDStatus(FormatDRBDStatus(got))
			require.NoError(t, err)
			require.Equal(t, got, again, "FormatDRBDStatus round-trips")
		})
	}

	bad := []struct{ name, in, errPart string }{
		{"indented line before any resource", "  disk:UpToDate\n", "before any resource"},
		{"peer device without a connection", "r0 role:Primary\n  disk:UpToDate\n    peer-disk:UpToDate\n", "outside a connection"},
		{"done is not a number", "r0 role:Primary\n  p role:Secondary\n    done:abc\n", "not a percentage"},
		{"done above 100", "r0 role:Primary\n  p role:Secondary\n    done:100.5\n", "not a percentage"},
		{"done NaN", "r0 role:Primary\n  p role:Secondary\n    done:NaN\n", "not a percentage"},
		{"token without a colon", "r0 Primary\n", "not key:value"},
		{"resource name with a colon", "role:Primary\n", "not a name"},
		{"negative volume", "r0\n  volume:-1 disk:UpToDate\n", "not a volume number"},
	}
	for _, tc := range bad {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, err := ParseDRBDStatus(tc.in)
			require.ErrorContains(t, err, tc.errPart)
		})
	}
}

// FuzzCloudDRBDStatus: whatever a host prints, the parser does not panic, and what it
// accepts has named resources, percentages in range, and survives a format/parse round trip
// unchanged.
func FuzzCloudDRBDStatus(f *testing.F) {
	f.Add(drbdSample)
	f.Add("r0 role:Primary\n  volume:0 disk:UpToDate\n  volume:1 disk:Diskless\n  p role:Secondary\n    volume:1 replication:SyncTarget done:0.01\n")
	f.Add("x\n  p\n    volume:3\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseDRBDStatus(in)
		if err != nil {
			return
		}
		for _, r := range got {
			if r.Name == "" || strings.Contains(r.Name, ":") {
				t.Fatalf("resource name %q", r.Name)
			}
			for _, p := range r.Peers {
				for _, v := range p.PeerVolumes {
					if !(v.Done >= 0 && v.Done <= 100) {
						t.Fatalf("done %v out of range", v.Done)
					}
				}
			}
		}
		again, err := ParseDRBDStatus(FormatDRBDStatus(got))
		if err != nil {
			t.Fatalf("formatted output does not parse: %v\n%s", err, FormatDRBDStatus(got))
		}
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("round trip changed\n%#v\n%#v", got, again)
		}
	})
}
