package anyops

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	debversion "pault.ag/go/debian/version"
)

// Advisory is a security advisory the fleet is patched for (FleetPatch, patch/<id>): which
// packages fix it and from which version, which services must restart on each role so the
// fix is live, and how to check actively whether a running server is still vulnerable.
type Advisory struct {
	// ID names it: CVE-2014-0160, DSA-2896-1, USN-2165-1.
	ID       string         `json:"id"`
	Title    string         `json:"title,omitempty"`
	Packages []FixedPackage `json:"packages"`
	// Restart lists, per role, the services that link the fixed library and must restart; a
	// role without an entry restarts nothing (the report says so).
	Restart map[Role][]string `json:"restart,omitempty"`
	// Check is the active check of a running server.
	Check ActiveCheck `json:"check"`
	// KeysExposed says the flaw may have leaked private keys: once the fleet is fixed, the
	// platform's certificate is rotated and custom-domain owners are told.
	KeysExposed bool `json:"keys_exposed,omitempty"`
}

// FixedPackage is a Debian package and the first version that carries the fix.
type FixedPackage struct {
	Name         string `json:"name"`
	FixedVersion string `json:"fixed_version"`
}

// CheckKind is the kind of active check an advisory uses.
type CheckKind string

const (
	// CheckHeartbleed sends a TLS heartbeat with a wrong length (Heartbleeder) to each role's
	// TLS endpoint: a server that answers is vulnerable.
	CheckHeartbleed CheckKind = "heartbleed"
)

// CheckKinds lists every CheckKind.
var CheckKinds = []CheckKind{CheckHeartbleed}

// ActiveCheck checks a running service rather than the installed version: a fixed library
// still vulnerable in a process that was not restarted shows here.
type ActiveCheck struct {
	Kind CheckKind `json:"kind"`
	// Endpoints are the TLS endpoints (host:port, as seen from the server itself) per role; a
	// role without one serves no TLS and gets the version check only.
	Endpoints map[Role]string `json:"endpoints,omitempty"`
}

// Heartbleed is CVE-2014-0160 as the platform patched it: openssl, libssl-dev and
// libssl1.0.0 to 1.0.1f-1ubuntu2.2, nginx restarted on web servers and tornado on console
// servers (their HTTPS services), checked with a heartbeat on each.
func Heartbleed() Advisory {
	fixed := "1.0.1f-1ubuntu2.2"
	return Advisory{
		ID: "CVE-2014-0160", Title: "OpenSSL TLS heartbeat read overrun (Heartbleed)",
		Packages: []FixedPackage{{"openssl", fixed}, {"libssl-dev", fixed}, {"libssl1.0.0", fixed}},
		Restart:  map[Role][]string{RoleWeb: {"nginx"}, RoleConsole: {"tornado"}},
		Check: ActiveCheck{Kind: CheckHeartbleed, Endpoints: map[Role]string{
			RoleWeb: "localhost:443", RoleConsole: "localhost:8888",
		}},
		KeysExposed: true,
	}
}

var (
	reAdvisoryID  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	reDebPackage  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{1,99}$`) // Debian policy 5.6.1
	reServiceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@._-]{0,99}$`)
)

// maxAdvisoryPackages bounds the packages of one advisory.
const maxAdvisoryPackages = 50

// Validate checks an advisory as the API receives it. Errors are EINVALID naming the field.
func (a Advisory) Validate() error {
	if !reAdvisoryID.MatchString(a.ID) {
		return Errorf(EINVALID, "advisory.id %q is not an advisory id like CVE-2014-0160 (letters, digits, . _ -, at most 64)", a.ID)
	}
	if len(a.Title) > 200 {
		return Errorf(EINVALID, "advisory.title is longer than 200 bytes")
	}
	if len(a.Packages) == 0 || len(a.Packages) > maxAdvisoryPackages {
		return Errorf(EINVALID, "advisory.packages must list 1 to %d packages", maxAdvisoryPackages)
	}
	seen := map[string]bool{}
	for i, p := range a.Packages {
		if !reDebPackage.MatchString(p.Name) {
			return Errorf(EINVALID, "advisory.packages[%d].name %q is not a Debian package name", i, p.Name)
		}
		if seen[p.Name] {
			return Errorf(EINVALID, "advisory.packages lists %s twice", p.Name)
		}
		seen[p.Name] = true
		if _, err := ParseDebianVersion(p.FixedVersion); err != nil {
			return Errorf(EINVALID, "advisory.packages[%d].fixed_version: %v", i, err)
		}
	}
	for role, services := range a.Restart {
		if !slices.Contains(Roles, role) {
			return Errorf(EINVALID, "advisory.restart: unknown role %q; roles are %v", role, Roles)
		}
		if len(services) == 0 || len(services) > 10 {
			return Errorf(EINVALID, "advisory.restart.%s must list 1 to 10 services", role)
		}
		for _, s := range services {
			if !reServiceName.MatchString(s) {
				return Errorf(EINVALID, "advisory.restart.%s: %q is not a service name", role, s)
			}
		}
	}
	if !slices.Contains(CheckKinds, a.Check.Kind) {
		return Errorf(EINVALID, "advisory.check.kind %q is not one of %v", a.Check.Kind, CheckKinds)
	}
	for role, ep := range a.Check.Endpoints {
		if !slices.Contains(Roles, role) {
			return Errorf(EINVALID, "advisory.check.endpoints: unknown role %q; roles are %v", role, Roles)
		}
		if err := checkEndpoint(ep); err != nil {
			return Errorf(EINVALID, "advisory.check.endpoints.%s: %v", role, err)
		}
	}
	return nil
}

// checkEndpoint accepts host:port with a DNS name or an IP and a port 1-65535.
func checkEndpoint(ep string) error {
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("%q is not host:port", ep)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
		return fmt.Errorf("%q: port must be 1 to 65535", ep)
	}
	if net.ParseIP(host) == nil && !reHostName.MatchString(host) {
		return fmt.Errorf("%q: %q is not a host name", ep, host)
	}
	return nil
}

var reHostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)

// DebianVersion is a package version as Debian policy 5.6.12 defines it:
// [epoch:]upstream_version[-debian_revision].
type DebianVersion struct{ v debversion.Version }

// String is the version as written.
func (v DebianVersion) String() string { return v.v.String() }

// Compare orders versions as dpkg does: -1, 0 or 1.
func (v DebianVersion) Compare(o DebianVersion) int { return debversion.Compare(v.v, o.v) }

// ParseDebianVersion validates s against Debian policy 5.6.12 and parses it: the epoch a
// decimal number; the upstream version starting with a digit, of alphanumerics and . + ~ (and
// - when a revision follows); the revision, after the last hyphen, non-empty, of alphanumerics
// and . + ~. Comparison is dpkg's, by pault.ag/go/debian/version.
func ParseDebianVersion(s string) (DebianVersion, error) {
	if s == "" {
		return DebianVersion{}, fmt.Errorf("version is empty")
	}
	if len(s) > 128 {
		return DebianVersion{}, fmt.Errorf("version %.20q… is longer than 128 bytes", s)
	}
	rest := s
	if epoch, after, ok := strings.Cut(s, ":"); ok {
		if epoch == "" || strings.Trim(epoch, "0123456789") != "" {
			return DebianVersion{}, fmt.Errorf("version %q: the epoch before ':' must be a decimal number", s)
		}
		if n, err := strconv.ParseUint(epoch, 10, 32); err != nil || n > math.MaxInt32 {
			return DebianVersion{}, fmt.Errorf("version %q: the epoch is too large", s)
		}
		rest = after
	}
	upstream, revision := rest, ""
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		upstream, revision = rest[:i], rest[i+1:]
		if revision == "" {
			return DebianVersion{}, fmt.Errorf("version %q: the revision after '-' is empty", s)
		}
	}
	if upstream == "" || upstream[0] < '0' || upstream[0] > '9' {
		return DebianVersion{}, fmt.Errorf("version %q: the upstream version must start with a digit", s)
	}
	for _, c := range upstream {
		if !isAlnum(c) && !strings.ContainsRune(".+~-", c) {
			return DebianVersion{}, fmt.Errorf("version %q: %q is not allowed in the upstream version (alphanumerics and . + ~ -)", s, c)
		}
	}
	for _, c := range revision {
		if !isAlnum(c) && !strings.ContainsRune(".+~", c) {
			return DebianVersion{}, fmt.Errorf("version %q: %q is not allowed in the revision (alphanumerics and . + ~)", s, c)
		}
	}
	v, err := debversion.Parse(s)
	if err != nil {
		return DebianVersion{}, fmt.Errorf("version %q: %v", s, err)
	}
	return DebianVersion{v}, nil
}

func isAlnum(c rune) bool {
	return c < 128 && (c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
}

// PatchTarget says which servers a patch covers: every server matching all the non-empty
// lists; all empty is the whole fleet.
type PatchTarget struct {
	Roles    []Role   `json:"roles,omitempty"`
	Clusters []string `json:"clusters,omitempty"`
	Zones    []string `json:"zones,omitempty"`
}

var reInventoryName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)

// Validate checks the target's names.
func (t PatchTarget) Validate() error {
	for _, r := range t.Roles {
		if !slices.Contains(Roles, r) {
			return Errorf(EINVALID, "target.roles: unknown role %q; roles are %v", r, Roles)
		}
	}
	for _, list := range []struct {
		field string
		names []string
	}{{"clusters", t.Clusters}, {"zones", t.Zones}} {
		for _, n := range list.names {
			if !reInventoryName.MatchString(n) {
				return Errorf(EINVALID, "target.%s: %q is not a name", list.field, n)
			}
		}
	}
	return nil
}

// Matches reports whether a server of that role, cluster and zone is in the target.
func (t PatchTarget) Matches(role Role, cluster, zone string) bool {
	return (len(t.Roles) == 0 || slices.Contains(t.Roles, role)) &&
		(len(t.Clusters) == 0 || slices.Contains(t.Clusters, cluster)) &&
		(len(t.Zones) == 0 || slices.Contains(t.Zones, zone))
}

// Rate is a count or a percentage of the targets, as SSM Run Command's MaxConcurrency and
// MaxErrors are written: "2" or "25%".
type Rate struct {
	Count   int
	Percent int // used when IsPercent
	// IsPercent says the rate is Percent of the targets.
	IsPercent bool
}

// ParseRate reads "N" or "P%". zeroOK allows 0 (max errors); a count must be at most 10000,
// a percentage at most 100.
func ParseRate(field, s string, zeroOK bool) (Rate, error) {
	min := 1
	if zeroOK {
		min = 0
	}
	num, pct := strings.CutSuffix(s, "%")
	n, err := strconv.Atoi(num)
	if err != nil || num != strconv.Itoa(n) {
		return Rate{}, Errorf(EINVALID, "%s %q is not a count (like 2) or a percentage (like 25%%)", field, s)
	}
	switch {
	case pct && (n < min || n > 100):
		return Rate{}, Errorf(EINVALID, "%s %q must be between %d%% and 100%%", field, s, min)
	case !pct && (n < min || n > 10000):
		return Rate{}, Errorf(EINVALID, "%s %q must be between %d and 10000", field, s, min)
	}
	if pct {
		return Rate{Percent: n, IsPercent: true}, nil
	}
	return Rate{Count: n}, nil
}

// Of is the rate applied to total targets: a count as it is; a percentage rounded up when
// roundUp (concurrency: at least one), else down (errors).
func (r Rate) Of(total int, roundUp bool) int {
	if !r.IsPercent {
		return r.Count
	}
	if roundUp {
		return max(1, (total*r.Percent+99)/100)
	}
	return total * r.Percent / 100
}

func (r Rate) String() string {
	if r.IsPercent {
		return strconv.Itoa(r.Percent) + "%"
	}
	return strconv.Itoa(r.Count)
}

// PatchOutcome is where one server of a rollout stands.
type PatchOutcome string

const (
	PatchPending      PatchOutcome = "pending"       // in the plan, not started
	PatchRunning      PatchOutcome = "running"       // being checked, patched or restarted
	PatchPatched      PatchOutcome = "patched"       // was vulnerable or outdated, verified fixed after
	PatchAlreadyFixed PatchOutcome = "already-fixed" // fixed version installed and the check clean before: nothing done
	PatchFailed       PatchOutcome = "failed"        // a step failed or the check after still found it vulnerable
	PatchUnreachable  PatchOutcome = "unreachable"   // SSM cannot reach the server
	PatchNotStarted   PatchOutcome = "not-started"   // the rollout stopped (errors, abort) before its turn
	PatchBlocked      PatchOutcome = "blocked"       // patching it would take its whole role down
)

// PatchOutcomes lists every PatchOutcome; the inventory's CHECK is tested against it.
var PatchOutcomes = []PatchOutcome{PatchPending, PatchRunning, PatchPatched, PatchAlreadyFixed, PatchFailed, PatchUnreachable, PatchNotStarted, PatchBlocked}

// IsError says whether the outcome counts against a rollout's max errors.
func (o PatchOutcome) IsError() bool { return o == PatchFailed || o == PatchUnreachable }

// CheckResult is what an active check found on a server's endpoint.
type CheckResult string

const (
	CheckVulnerable CheckResult = "vulnerable"
	CheckFixed      CheckResult = "fixed"
	CheckNone       CheckResult = "none"        // the role serves no TLS: no active check
	CheckNoAnswer   CheckResult = "unreachable" // nothing listens on the endpoint
)

// PatchWorkflowID is the business key of a fleet patch: one rollout per advisory.
func PatchWorkflowID(advisory string) string { return "patch/" + advisory }

// RolloutState is where a fleet patch's rollout stands.
type RolloutState string

const (
	RolloutRunning          RolloutState = "running"
	RolloutAwaitingApproval RolloutState = "awaiting-approval" // the canary is done; an operator approves or aborts
	RolloutCompleted        RolloutState = "completed"
	RolloutStopped          RolloutState = "stopped" // errors past max errors: nothing new started
	RolloutAborted          RolloutState = "aborted" // an operator aborted it
)

// Final reports whether a rollout in this state has ended: nothing more runs for it.
func (s RolloutState) Final() bool {
	return s == RolloutCompleted || s == RolloutStopped || s == RolloutAborted
}

// RolloutStates lists every RolloutState; the inventory's CHECK is tested against it.
var RolloutStates = []RolloutState{RolloutRunning, RolloutAwaitingApproval, RolloutCompleted, RolloutStopped, RolloutAborted}

// PatchSummary is a fleet patch's figures: FleetPatch's result carries them beside its
// per-server report, and the heartbleed drill reports them.
type PatchSummary struct {
	Advisory   string       `json:"advisory"`
	State      RolloutState `json:"state"`
	Errors     int          `json:"errors"`
	MaxErrors  int          `json:"max_errors"`
	StopReason string       `json:"stop_reason,omitempty"`
	// VulnerableBefore and VulnerableAfter count servers whose active check (not only the
	// version) found them vulnerable before they were patched, and after the rollout (a
	// server never checked counts as vulnerable after: nobody showed it fixed).
	VulnerableBefore int            `json:"vulnerable_before"`
	VulnerableAfter  int            `json:"vulnerable_after"`
	Outcomes         map[string]int `json:"outcomes"`
	// MaxRoleDownPercent is the largest share of a role's servers that were out of rotation
	// at once.
	MaxRoleDownPercent int `json:"max_role_down_percent"`
	NoticesSent        int `json:"notices_sent"`
	NoticesQueued      int `json:"notices_queued"`
	// UserChecks and UserErrors count the users' health checks (watch_users) and those that
	// failed on a server in rotation; UserErrorList names the first of them.
	UserChecks    int      `json:"user_checks"`
	UserErrors    int      `json:"user_errors"`
	UserErrorList []string `json:"user_error_list,omitempty"`
}

// ServerCheck is what a check of one server found: each package's installed version ("" when
// not installed), the active check, and, after a patch, whether the service is healthy.
type ServerCheck struct {
	Versions map[string]string `json:"versions"`
	Check    CheckResult       `json:"check"`
	Endpoint string            `json:"endpoint,omitempty"`
	Detail   string            `json:"detail,omitempty"`
	Healthy  *bool             `json:"healthy,omitempty"`
}

// Outdated lists the advisory's packages installed below their fixed version.
func (c ServerCheck) Outdated(a Advisory) []string {
	var out []string
	for _, p := range a.Packages {
		have, ok := c.Versions[p.Name]
		if !ok || have == "" {
			continue // not installed: nothing to fix
		}
		hv, err1 := ParseDebianVersion(have)
		fv, err2 := ParseDebianVersion(p.FixedVersion)
		if err1 != nil || err2 != nil || hv.Compare(fv) < 0 {
			out = append(out, p.Name)
		}
	}
	return out
}

// Fixed says the server needs nothing: every package at its fixed version or later and the
// active check not vulnerable.
func (c ServerCheck) Fixed(a Advisory) bool {
	return len(c.Outdated(a)) == 0 && c.Check != CheckVulnerable
}

// serviceHealthURLs are where each role's service answers its health probe, from the server
// itself (web: nginx; console: tornado, the consoles' server).
var serviceHealthURLs = map[Role]string{RoleWeb: "http://localhost/", RoleConsole: "http://localhost:8888/"}

// ServiceHealthURL is the health probe URL of a role's service; "" for a role without one.
func ServiceHealthURL(r Role) string { return serviceHealthURLs[r] }
