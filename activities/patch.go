package activities

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// PatchTargetServer is one server a fleet patch covers.
type PatchTargetServer struct {
	Name       string             `json:"name"`
	InstanceID string             `json:"instance_id,omitempty"`
	Role       anyops.Role        `json:"role"`
	Cluster    string             `json:"cluster"`
	Zone       string             `json:"zone"`
	State      anyops.ServerState `json:"state"`
}

// PatchPlan is the servers of a target, in rollout order (by role as anyops.Roles lists
// them, then by name), and how many servers each role has in the target: the base of the
// role-down limit.
type PatchPlan struct {
	Servers   []PatchTargetServer `json:"servers"`
	RoleSizes map[anyops.Role]int `json:"role_sizes"`
}

// PlanPatch lists the inventory's servers in the target; terminated ones are left out,
// stopped or impaired ones stay in (they are reported unreachable, never skipped silently).
func (a *Inventory) PlanPatch(ctx context.Context, target anyops.PatchTarget) (PatchPlan, error) {
	servers, err := listAll(func(p inventory.Page) ([]inventory.Server, string, error) {
		return a.Store.ListServers(ctx, inventory.ServerFilter{Page: p})
	})
	if err != nil {
		return PatchPlan{}, classify(err)
	}
	plan := PatchPlan{Servers: []PatchTargetServer{}, RoleSizes: map[anyops.Role]int{}}
	for _, s := range servers {
		if s.State == anyops.ServerTerminated || !target.Matches(s.Role, s.Cluster, s.Zone) {
			continue
		}
		plan.Servers = append(plan.Servers, PatchTargetServer{Name: s.Name, InstanceID: s.InstanceID, Role: s.Role, Cluster: s.Cluster, Zone: s.Zone, State: s.State})
		plan.RoleSizes[s.Role]++
	}
	sort.SliceStable(plan.Servers, func(i, j int) bool {
		ri, rj := slices.Index(anyops.Roles, plan.Servers[i].Role), slices.Index(anyops.Roles, plan.Servers[j].Role)
		if ri != rj {
			return ri < rj
		}
		return plan.Servers[i].Name < plan.Servers[j].Name
	})
	return plan, nil
}

// InRotation lists the running servers of a target that are not drained: those users reach
// (a drained web server takes no requests, a drained console host admits no console), in
// rollout order. FleetPatch's users' health checks probe them.
func (a *Inventory) InRotation(ctx context.Context, target anyops.PatchTarget) ([]PatchTargetServer, error) {
	plan, err := a.PlanPatch(ctx, target)
	if err != nil {
		return nil, err
	}
	drains, err := a.Store.Drains(ctx)
	if err != nil {
		return nil, classify(err)
	}
	out := []PatchTargetServer{}
	for _, s := range plan.Servers {
		if _, drained := drains[s.Name]; !drained && s.State == anyops.ServerRunning && s.InstanceID != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// StartPatchRolloutInput records a rollout's plan.
type StartPatchRolloutInput struct {
	Rollout inventory.PatchRollout  `json:"rollout"`
	Servers []inventory.PatchServer `json:"servers"`
}

// StartPatchRollout records the rollout and its servers, pending; the same run again is no
// change (inventory.StartPatchRollout).
func (a *Inventory) StartPatchRollout(ctx context.Context, in StartPatchRolloutInput) error {
	_, err := a.Store.StartPatchRollout(ctx, in.Rollout, in.Servers)
	return classify(err)
}

// RecordPatchServer writes one server's report; writing the same again is no change.
func (a *Inventory) RecordPatchServer(ctx context.Context, p inventory.PatchServer) error {
	return classify(a.Store.RecordPatchServer(ctx, p))
}

// PatchRolloutStateInput sets a rollout's state.
type PatchRolloutStateInput struct {
	Advisory string              `json:"advisory"`
	State    anyops.RolloutState `json:"state"`
	Errors   int                 `json:"errors"`
	Reason   string              `json:"reason,omitempty"`
}

// SetPatchRolloutState records the rollout's state (a final one marks the servers not reached
// as not-started with the reason).
func (a *Inventory) SetPatchRolloutState(ctx context.Context, in PatchRolloutStateInput) error {
	return classify(a.Store.SetPatchRolloutState(ctx, in.Advisory, in.State, in.Errors, in.Reason))
}

// DrainInput takes a server out of rotation (Drain) or puts it back.
type DrainInput struct {
	Server string `json:"server"`
	Drain  bool   `json:"drain"`
	Reason string `json:"reason,omitempty"`
	By     string `json:"by,omitempty"`
}

// DrainServer drains or undrains a server in the inventory. A drained console host is left
// out of ConsoleHosts, so no new console is placed on it and the public capacity leaves it
// out; a drained web server is out of the web rotation. Both directions are idempotent.
func (a *Inventory) DrainServer(ctx context.Context, in DrainInput) error {
	if in.Drain {
		return classify(a.Store.DrainServer(ctx, in.Server, in.Reason, in.By))
	}
	return classify(a.Store.UndrainServer(ctx, in.Server))
}

// DecideNoticesInput asks to notify the owners of custom-domain web apps on the exposed
// servers about an advisory.
type DecideNoticesInput struct {
	Advisory anyops.Advisory `json:"advisory"`
	Exposed  []string        `json:"exposed"`
	Actor    string          `json:"actor"`
}

// DecideNoticesOutput lists the notices queued (or queued before) for the advisory.
type DecideNoticesOutput struct {
	Notices []inventory.Notice `json:"notices"`
}

// DecideNotices writes the decision and one notice per owner into the outbox in one
// transaction (inventory.DecideNotices); a retry writes nothing twice.
func (a *Inventory) DecideNotices(ctx context.Context, in DecideNoticesInput) (DecideNoticesOutput, error) {
	domain := inventory.DemoPlatformDomain
	notices, err := a.Store.DecideNotices(ctx, in.Advisory.ID, in.Exposed, in.Actor, domain, func(owner string, apps []inventory.WebApp) (string, string) {
		return NoticeText(in.Advisory, owner, apps)
	})
	for i := range notices {
		notices[i].Body = "" // the outbox keeps it; the workflow's history need not
	}
	return DecideNoticesOutput{Notices: notices}, classify(err)
}

// NoticeText is the email to an owner whose custom-domain apps ran on exposed servers.
func NoticeText(adv anyops.Advisory, owner string, apps []inventory.WebApp) (subject, body string) {
	var domains []string
	for _, a := range apps {
		domains = append(domains, a.Domain)
	}
	subject = fmt.Sprintf("%s: please replace the certificate of %s", adv.ID, strings.Join(domains, ", "))
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\r\n\r\n", owner)
	fmt.Fprintf(&b, "%s (%s) affected the servers that host your web apps on custom domains:\r\n\r\n", adv.ID, adv.Title)
	for _, a := range apps {
		fmt.Fprintf(&b, "  - %s (%s)\r\n", a.Domain, a.Name)
	}
	b.WriteString("\r\nThose servers are patched and verified. We have no sign that anyone used the flaw against us,\r\n" +
		"but the private keys of your certificates were in their memory before the fix, so please:\r\n\r\n" +
		"  1. create a new private key and certificate request, and have your certificate reissued;\r\n" +
		"  2. upload the new certificate and key to your web app;\r\n" +
		"  3. revoke the old certificate with your certificate authority.\r\n\r\n" +
		"If you have questions, just reply to this message.\r\n")
	return subject, b.String()
}

// The inventory's patch records under the names workflows use, so they need not import the
// store.
type (
	PatchRolloutRecord = inventory.PatchRollout
	PatchServerReport  = inventory.PatchServer
	PatchSpec          = inventory.PatchSpec
	NoticeRecord       = inventory.Notice
)
