package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/workflows"
)

// TestReleaseInputFromFlags: the flags make the API's release input (a plan is a dry run;
// instance types by role), and malformed ones are refused before any request.
func TestReleaseInputFromFlags(t *testing.T) {
	f := releaseFlags{types: []string{"file=m6i.2xlarge", "web=c6i.xlarge"}}
	f.in.Version, f.in.TargetZone = "2014.11", "us-east-1c"
	raw, err := f.input("live", true)
	if err != nil {
		t.Fatal(err)
	}
	var in workflows.ReleaseInput
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	if in.Cluster != "live" || !in.DryRun || in.TargetZone != "us-east-1c" || in.InstanceTypes[anyops.RoleFile] != "m6i.2xlarge" || in.InstanceTypes[anyops.RoleWeb] != "c6i.xlarge" {
		t.Errorf("input %+v", in)
	}
	if _, err := (&releaseFlags{}).input("live", true); err == nil || !strings.Contains(err.Error(), "--version") {
		t.Errorf("no version: %v", err)
	}
	bad := releaseFlags{types: []string{"file"}}
	bad.in.Version = "2"
	if _, err := bad.input("live", false); err == nil || !strings.Contains(err.Error(), "role=type") {
		t.Errorf("malformed instance type: %v", err)
	}
}

// TestPrintPlan: the plan's table names every volume with its way, marks deferred ones and
// prints each blocker.
func TestPrintPlan(t *testing.T) {
	p := workflows.ReleasePlan{Cluster: "live", Version: "2", NewCluster: "live-2", Zone: "us-east-1a", TargetZone: "us-east-1c", ZoneMove: true, Hash: "0123456789abcdef",
		Volumes: []workflows.VolumeMove{{VolumeID: "vol-1", Server: "live-file", Kind: anyops.VolumeDropbox, Way: anyops.WaySnapshot, Deferred: true},
			{VolumeID: "vol-2", Server: "live-file"}},
		Blockers:     []workflows.Blocker{{Kind: anyops.BlockerUnknownVolume, VolumeID: "vol-2", Message: "volume vol-2 is not in the inventory"}},
		CriticalPath: []string{"maintenance", "clients"}}
	var b strings.Builder
	printPlan(&b, p)
	out := b.String()
	for _, want := range []string{"a zone move", "0123456789abcdef", "vol-1", "snapshot (deferred)", "vol-2", "BLOCKER unknown-volume: volume vol-2", "maintenance -> clients"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
