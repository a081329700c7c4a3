package cloudsim

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCommandFailureFault proves a command-failure fault fails exactly the command it names
// (by its first words), on its instance only, as many times as its count says, and then ends;
// and that a fault without instance, command or with a bad exit code is refused.
func TestCommandFailureFault(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	web := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	other := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	f.sim.Advance(bootTime)

	f.injectFault(t, map[string]any{"type": FaultCommandFailure, "instance_id": web, "command": "systemctl restart", "count": 2, "exit_code": 3})
	tests := []struct {
		name     string
		instance string
		script   string
		wantCode int32
	}{
		{"another command runs", web, "systemctl is-active ssh", 0},
		{"another instance runs", other, "systemctl restart ssh", 0},
		{"first run of the command fails", web, "systemctl restart ssh", 3},
		{"second run fails", web, "sudo systemctl restart ssh", 3},
		{"the third runs: the fault is used up", web, "systemctl restart ssh", 0},
	}
	for _, tt := range tests {
		_, stderr, code, _ := f.shell(t, tt.instance, tt.script)
		if code != tt.wantCode {
			t.Errorf("%s: %q exited %d (%s), want %d", tt.name, tt.script, code, stderr, tt.wantCode)
		}
		if tt.wantCode != 0 && !strings.Contains(stderr, "cloudsim fault") {
			t.Errorf("%s: stderr %q does not name the fault", tt.name, stderr)
		}
	}
	if active, _ := f.sim.Faults(); len(active) != 0 {
		t.Errorf("faults still active after the count ran out: %+v", active)
	}

	for _, bad := range []map[string]any{
		{"type": FaultCommandFailure, "command": "umount"},
		{"type": FaultCommandFailure, "instance_id": web},
		{"type": FaultCommandFailure, "instance_id": web, "command": "umount", "exit_code": 256},
		{"type": FaultCommandFailure, "instance_id": web, "command": "umount", "count": -1},
	} {
		body, _ := json.Marshal(bad)
		if status, resp := f.post(t, "/_sim/faults", "application/json", string(body), nil); status != 400 {
			t.Errorf("fault %s: %d %s, want 400", body, status, resp)
		}
	}
}
