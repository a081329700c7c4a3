package alarms

import (
	"fmt"
	"slices"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/workflows"
)

// Rule says what recovers a server of a role whose alarm fires: the operation kind the intake
// starts (or joins, by its business key) and the incident's title.
type Rule struct {
	Role anyops.Role
	// Kind is the operation kind of the recovery workflow (workflows' kind registry).
	Kind string
	// Title words the incident: %s is the server's name.
	Title string
}

// Rules is the one table that maps an alarm on a server to its recovery: a file server fails
// over (promote the hot backup, repair, or replace, whichever serves first); a backup is
// rebuilt from a snapshot of its file server; web, console and task servers are replaced by a
// new server of their role.
var Rules = []Rule{
	{Role: anyops.RoleFile, Kind: workflows.KindFailover, Title: "file server %s failed"},
	{Role: anyops.RoleBackup, Kind: workflows.KindBackupRebuild, Title: "backup server %s failed"},
	{Role: anyops.RoleWeb, Kind: workflows.KindServerReplace, Title: "web server %s failed"},
	{Role: anyops.RoleConsole, Kind: workflows.KindServerReplace, Title: "console server %s failed"},
	{Role: anyops.RoleTask, Kind: workflows.KindServerReplace, Title: "task server %s failed"},
}

// RuleFor returns the rule of a role.
func RuleFor(role anyops.Role) (Rule, bool) {
	for _, r := range Rules {
		if r.Role == role {
			return r, true
		}
	}
	return Rule{}, false
}

// title is the incident title of the rule for server.
func (r Rule) title(server string) string { return fmt.Sprintf(r.Title, server) }

// RecoveryKinds lists each recovery kind of the Rules once, in the order of the table: the
// kinds whose runs on a server make it the subject of a fault, whatever its role is now.
func RecoveryKinds() []string {
	var kinds []string
	for _, r := range Rules {
		if !slices.Contains(kinds, r.Kind) {
			kinds = append(kinds, r.Kind)
		}
	}
	return kinds
}

// ruleOfKind returns the first rule that names kind: its title words an incident opened for a
// running recovery of that kind.
func ruleOfKind(kind string) (Rule, bool) {
	for _, r := range Rules {
		if r.Kind == kind {
			return r, true
		}
	}
	return Rule{}, false
}
