package alarms

import (
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/workflows"
)

// TestRulesCoverEveryRoleWithARegisteredKind proves every server role has a rule, that each
// rule's kind is registered and takes the intake's input, and that the business key its
// Prepare gives is the root package's for that recovery: file → failover/<server>, backup →
// backup-rebuild/<server>, web, console and task → replace/<server>.
func TestRulesCoverEveryRoleWithARegisteredKind(t *testing.T) {
	wantID := map[anyops.Role]func(string) string{
		anyops.RoleFile:    anyops.FailoverWorkflowID,
		anyops.RoleBackup:  anyops.BackupRebuildWorkflowID,
		anyops.RoleWeb:     anyops.ServerReplaceWorkflowID,
		anyops.RoleConsole: anyops.ServerReplaceWorkflowID,
		anyops.RoleTask:    anyops.ServerReplaceWorkflowID,
	}
	for _, role := range anyops.Roles {
		rule, ok := RuleFor(role)
		if !ok {
			t.Errorf("no rule for role %s", role)
			continue
		}
		kind, ok := workflows.LookupKind(rule.Kind)
		if !ok {
			t.Errorf("rule for %s names kind %q, which is not registered", role, rule.Kind)
			continue
		}
		for _, in := range []*Intake{{}, {Speed: 60}} {
			if _, err := kind.Prepare(in.recoveryInput("srv-1", 7), "alarm:sns"); err != nil {
				t.Errorf("kind %s refuses the intake's input (speed %v): %v", kind.Name, in.Speed, err)
			}
		}
		start, err := kind.Prepare((&Intake{}).recoveryInput("srv-1", 7), "alarm:sns")
		if err != nil {
			continue
		}
		if want := wantID[role]("srv-1"); start.ID != want {
			t.Errorf("role %s: business key %q, want %q", role, start.ID, want)
		}
	}
}
