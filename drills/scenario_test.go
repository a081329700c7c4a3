package drills

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
)

// TestShippedScenariosParse proves every scenario that ships parses for a drill cluster, has a
// one-line description, names its cluster's servers only through {{cluster}}, and that the six
// the issue asks for are there.
func TestShippedScenariosParse(t *testing.T) {
	want := []string{"backup-dies-too", "hot-backup", "july-2014", "throttled", "warm-spare", "web-and-console"}
	got := ScenarioNames()
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("scenario %s does not ship (have %v)", w, got)
		}
	}
	for _, info := range Scenarios() {
		src, ok := Shipped(info.Name)
		if !ok {
			t.Fatalf("Shipped(%s) not found", info.Name)
		}
		sc, err := ParseScenario(info.Name, src, "drill-7", nil)
		if err != nil {
			t.Fatalf("%s: %v", info.Name, err)
		}
		if sc.Description == "" {
			t.Errorf("%s has no description", info.Name)
		}
		if strings.Contains(string(src), "drill-") {
			t.Errorf("%s names a drill cluster itself instead of {{cluster}}", info.Name)
		}
		for i, st := range sc.Steps {
			b, _ := json.Marshal(st)
			if strings.Contains(string(b), "tag:Name=") && !strings.Contains(string(b), "drill-7-") {
				t.Errorf("%s step %d targets no server of the drill's cluster: %s", info.Name, i+1, b)
			}
		}
	}
}

// TestParseScenarioForms proves the two forms and the defaults: a plain cloudsim list runs at
// the default speed with its first hardware failure as origin, {{cluster}} is replaced inside
// strings, and the object form's settings are read.
func TestParseScenarioForms(t *testing.T) {
	plain := "- at: 5m\n  fault: {type: drbd-disconnect, instance_id: \"tag:Name={{cluster}}-backup\"}\n" +
		"- at: 20m\n  fault: {type: hardware-failure, instance_id: \"tag:Name={{cluster}}-file\"}\n"
	sc, err := ParseScenario(FileScenario, []byte(plain), "drill-3", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Speed != DefaultSpeed || sc.Timeout != DefaultTimeout || sc.Origin != 1 || sc.Incidents != 1 || len(sc.Steps) != 2 {
		t.Errorf("defaults: %+v", sc)
	}
	if !strings.Contains(string(sc.Steps[1].Fault), `"tag:Name=drill-3-file"`) || sc.Steps[1].At != 20*time.Minute {
		t.Errorf("step 2: %s at %s", sc.Steps[1].Fault, sc.Steps[1].At)
	}

	obj := `{"description": "d", "speed": 30, "timeout": "45m", "spare": true, "incidents": 3,
		"goals": {"rto_seconds": 300}, "steps": [
		{"at": "0s", "command": {"instance_id": "tag:Name={{cluster}}-backup", "run": ["drbdadm down {{cluster}}-r0"]}},
		{"at": "1m", "origin": true, "fault": {"type": "corrupt-boot-disk", "instance_id": "tag:Name={{cluster}}-file"}},
		{"at": "2m", "operation": {"kind": "fleet-audit"}}]}`
	sc, err = ParseScenario(FileScenario, []byte(obj), "drill-4", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Speed != 30 || sc.Timeout != 45*time.Minute || !sc.Spare || sc.Incidents != 3 || sc.Origin != 1 || sc.Goals["rto_seconds"] != 300 {
		t.Errorf("object form: %+v", sc)
	}
	if c := sc.Steps[0].Command; c == nil || c.Run[0] != "drbdadm down drill-4-r0" {
		t.Errorf("command: %+v", c)
	}
	if op := sc.Steps[2].Operation; op == nil || op.Kind != "fleet-audit" || string(op.Input) != "{}" {
		t.Errorf("operation: %+v", op)
	}
}

// TestParseScenarioRefuses proves each rule refuses the file with a message naming what is
// wrong, as an EINVALID error (a 400 at the API), and schedules nothing.
func TestParseScenarioRefuses(t *testing.T) {
	hw := `{"at": "1m", "fault": {"type": "hardware-failure", "instance_id": "tag:Name={{cluster}}-file"}}`
	for _, tc := range []struct{ name, src, want string }{
		{"empty", "", "empty"},
		{"not yaml", "- at: [", "neither JSON nor YAML"},
		{"scalar", "42", "list of steps"},
		{"no steps", `{"steps": []}`, "1 to 100 steps"},
		{"unknown field", `{"stepz": [` + hw + `]}`, "unknown field"},
		{"unknown step field", `[{"at": "1m", "faults": {}}]`, "unknown field"},
		{"unknown fault type", `[{"at": "1m", "fault": {"type": "meteor"}}]`, "unknown fault type"},
		{"fault without target", `[{"at": "1m", "fault": {"type": "hardware-failure"}}]`, "needs instance_id"},
		{"unknown fault field", `[{"at": "1m", "fault": {"type": "hardware-failure", "instance": "x"}}]`, "unknown field"},
		{"no at", `[{"fault": {"type": "hardware-failure", "instance_id": "i-0123456789abcdef0"}}]`, "at is required"},
		{"bad at", `[{"at": "soon", "fault": {"type": "hardware-failure", "instance_id": "i-0123456789abcdef0"}}]`, "must be a duration"},
		{"negative at", `[{"at": "-1m", "fault": {"type": "hardware-failure", "instance_id": "i-0123456789abcdef0"}}]`, "must be a duration"},
		{"at too late", `[{"at": "100h", "fault": {"type": "hardware-failure", "instance_id": "i-0123456789abcdef0"}}]`, "must be a duration"},
		{"number at", `[{"at": 0, "fault": {"type": "hardware-failure", "instance_id": "i-0123456789abcdef0"}}]`, "cannot unmarshal"},
		{"two actions", `[{"at": "1m", "fault": {"type": "hardware-failure", "instance_id": "i-0123456789abcdef0"}, "operation": {"kind": "fleet-audit"}}]`, "exactly one"},
		{"no action", `[{"at": "1m"}]`, "exactly one"},
		{"bad kind", `[{"at": "1m", "operation": {"kind": "Tele port"}}]`, "not a kind's name"},
		{"operation input not an object", `[{"at": "1m", "operation": {"kind": "fleet-audit", "input": [1]}}]`, "must be an object"},
		{"command without run", `[{"at": "1m", "command": {"instance_id": "i-0123456789abcdef0"}}]`, "1 to 50 lines"},
		{"command bad target", `[{"at": "1m", "command": {"instance_id": "file1", "run": ["true"]}}]`, "neither an instance id"},
		{"fill without volume", `[{"at": "1m", "fill": {"gib": 5}}]`, "needs volume_id"},
		{"fill of a server", `[{"at": "1m", "fill": {"volume_id": "i-0123456789abcdef0", "gib": 5}}]`, "needs volume_id"},
		{"fill of nothing", `[{"at": "1m", "fill": {"volume_id": "vol-0123456789abcdef0", "gib": 0}}]`, "gib above 0"},
		{"fill too large", `[{"at": "1m", "fill": {"volume_id": "vol-0123456789abcdef0", "gib": 1e6}}]`, "gib above 0"},
		{"fill unknown field", `[{"at": "1m", "fill": {"volume_id": "vol-0123456789abcdef0", "size": 5}}]`, "unknown field"},
		{"command newline", `[{"at": "1m", "command": {"instance_id": "i-0123456789abcdef0", "run": ["true\nrm"]}}]`, "one line"},
		{"two origins", `{"steps": [` + strings.Replace(hw, `"at"`, `"origin": true, "at"`, 1) + `,` + strings.Replace(hw, `"at"`, `"origin": true, "at"`, 1) + `]}`, "only one step"},
		{"speed too high", `{"speed": 1e9, "steps": [` + hw + `]}`, "speed must be"},
		{"speed zero", `{"speed": 0, "steps": [` + hw + `]}`, "speed must be"},
		{"timeout too short", `{"timeout": "1s", "steps": [` + hw + `]}`, "timeout"},
		{"cluster other", `{"cluster": "live-2", "steps": [` + hw + `]}`, "cluster must be"},
		{"spare on live", `{"cluster": "live", "spare": true, "steps": [` + hw + `]}`, "spare"},
		{"unknown goal", `{"goals": {"happiness": 1}, "steps": [` + hw + `]}`, "not a numeric report key"},
		{"unknown report", `{"report": ["vibes"], "steps": [` + hw + `]}`, "not registered"},
		{"incidents", `{"incidents": 99, "steps": [` + hw + `]}`, "incidents must be"},
		{"other placeholder", `[{"at": "1m", "fault": {"type": "hardware-failure", "instance_id": "tag:Name={{zone}}-file"}}]`, "unknown placeholder"},
		{"two lines description", `{"description": "a\nb", "steps": [` + hw + `]}`, "one line"},
		{"trailing data", `[` + hw + `] []`, "unexpected data"},
		{"too large", "# " + strings.Repeat("x", MaxScenarioBytes), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario(FileScenario, []byte(tc.src), "drill-1", nil)
			if err == nil {
				t.Fatalf("accepted %q", tc.src)
			}
			if anyops.ErrorCode(err) != anyops.EINVALID {
				t.Errorf("code %q, want invalid: %v", anyops.ErrorCode(err), err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	if _, err := ParseScenario(FileScenario, []byte(`[`+hw+`]`), "Drill 1", nil); err == nil {
		t.Error("a cluster name with a space was accepted")
	}
}

// FuzzParseScenario proves no file makes the loader panic, and that what it accepts is
// complete: steps within bounds, each with exactly one action, an origin among them, the speed
// and timeout within bounds. Corpus in testdata/fuzz/FuzzParseScenario.
func FuzzParseScenario(f *testing.F) {
	for _, info := range Scenarios() {
		src, _ := Shipped(info.Name)
		f.Add(src)
	}
	f.Add([]byte(`[{"at": "1m", "fault": {"type": "throttle", "rate": 2}}]`))
	f.Add([]byte(`{"steps": [{"at": "0s", "operation": {"kind": "fleet-audit", "input": {}}}]}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		sc, err := ParseScenario(FileScenario, src, "drill-9", nil)
		if err != nil {
			if anyops.ErrorCode(err) != anyops.EINVALID {
				t.Fatalf("error is not EINVALID: %v", err)
			}
			return
		}
		if len(sc.Steps) == 0 || len(sc.Steps) > MaxSteps || sc.Origin < 0 || sc.Origin >= len(sc.Steps) {
			t.Fatalf("accepted %d steps with origin %d", len(sc.Steps), sc.Origin)
		}
		if sc.Speed < MinSpeed || sc.Speed > MaxSpeed || sc.Timeout < MinTimeout || sc.Timeout > MaxTimeout {
			t.Fatalf("accepted speed %g, timeout %s", sc.Speed, sc.Timeout)
		}
		for i, st := range sc.Steps {
			n := 0
			if st.Fault != nil {
				n++
			}
			if st.Operation != nil {
				n++
			}
			if st.Command != nil {
				n++
			}
			if st.Fill != nil {
				n++
				if st.Fill.GiB <= 0 || st.Fill.GiB > MaxFillGiB {
					t.Fatalf("step %d accepted a fill of %g GiB", i, st.Fill.GiB)
				}
			}
			if n != 1 || st.At < 0 || st.At > MaxStepAt {
				t.Fatalf("step %d accepted with %d actions at %s", i, n, st.At)
			}
		}
	})
}
