package anyops

import (
	"strings"
	"testing"
)

// TestParseDebianVersion proves the policy's grammar is enforced ([epoch:]upstream[-revision]
// with their allowed characters) and that comparison is dpkg's (~ sorts before anything).
func TestParseDebianVersion(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"1.0.1f-1ubuntu2.2", true},
		{"1:6.6p1-2ubuntu2", true},
		{"2.0~rc1", true},
		{"1.2-3-4", true}, // hyphens in upstream when a revision follows
		{"0", true},
		{"", false},
		{"abc", false},           // upstream must start with a digit
		{"1.0-", false},          // empty revision
		{"a:1.0", false},         // epoch not a number
		{"-1:1.0", false},        // negative epoch
		{"+1:1.0", false},        // signed epoch
		{":1.0", false},          // empty epoch
		{"1:", false},            // nothing after the epoch
		{"1.0_1", false},         // _ is not allowed
		{"1.0 ", false},          // spaces
		{" 1.0", false},          //
		{"1.0-1_2", false},       // _ in revision
		{"1.0-1-", false},        // trailing hyphen
		{"1:2:3", false},         // colon in upstream
		{"1.0-ü", false},         // non-ASCII
		{"1.0;rm -rf /", false},  // shell
		{"99999999999:1", false}, // epoch overflow
	} {
		_, err := ParseDebianVersion(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDebianVersion(%q) error %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
	order := []string{"1.0.1f-1ubuntu2", "1.0.1f-1ubuntu2.2", "1.0.1g-1", "1:0.1"}
	for i := 1; i < len(order); i++ {
		a, _ := ParseDebianVersion(order[i-1])
		b, _ := ParseDebianVersion(order[i])
		if a.Compare(b) >= 0 || b.Compare(a) <= 0 {
			t.Errorf("%s should sort before %s", order[i-1], order[i])
		}
	}
	rc, _ := ParseDebianVersion("2.0~rc1")
	final, _ := ParseDebianVersion("2.0")
	if rc.Compare(final) >= 0 {
		t.Error("2.0~rc1 should sort before 2.0")
	}
}

// FuzzDebianVersion proves the parser never panics and accepts only what policy allows.
func FuzzDebianVersion(f *testing.F) {
	for _, s := range []string{"1.0.1f-1ubuntu2.2", "1:6.6p1-2ubuntu2", "2.0~rc1", "1.0-", "a:b", ":", "0:0-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseDebianVersion(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(s, " \t\n_;/$`'\"") || s == "" {
			t.Fatalf("accepted %q", s)
		}
		if v.Compare(v) != 0 {
			t.Fatalf("%q does not equal itself", s)
		}
	})
}

// TestAdvisoryValidate proves each kind of bad advisory is refused with a message naming the
// field, and the Heartbleed advisory is accepted.
func TestAdvisoryValidate(t *testing.T) {
	if err := Heartbleed().Validate(); err != nil {
		t.Fatalf("Heartbleed() invalid: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		change     func(*Advisory)
	}{
		{"bad id", "advisory.id", func(a *Advisory) { a.ID = "CVE 2014" }},
		{"no packages", "advisory.packages", func(a *Advisory) { a.Packages = nil }},
		{"bad package", "name", func(a *Advisory) { a.Packages[0].Name = "OpenSSL" }},
		{"twice", "twice", func(a *Advisory) { a.Packages[1] = a.Packages[0] }},
		{"not a Debian version", "fixed_version", func(a *Advisory) { a.Packages[0].FixedVersion = "latest" }},
		{"unknown restart role", "unknown role", func(a *Advisory) { a.Restart["database"] = []string{"postgres"} }},
		{"bad service", "service name", func(a *Advisory) { a.Restart[RoleWeb] = []string{"nginx; reboot"} }},
		{"unknown check", "check.kind", func(a *Advisory) { a.Check.Kind = "poodle" }},
		{"unknown check role", "unknown role", func(a *Advisory) { a.Check.Endpoints["db"] = "localhost:5432" }},
		{"bad endpoint", "host:port", func(a *Advisory) { a.Check.Endpoints[RoleWeb] = "localhost" }},
		{"bad port", "port", func(a *Advisory) { a.Check.Endpoints[RoleWeb] = "localhost:99999" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Heartbleed()
			tc.change(&a)
			err := a.Validate()
			if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want EINVALID mentioning %q", err, tc.want)
			}
		})
	}
}

// TestParseRate proves SSM's forms: a count or a percentage; concurrency 0 or above 100% and
// negative errors are refused; percentages round up for concurrency and down for errors.
func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in     string
		zeroOK bool
		ok     bool
	}{
		{"1", false, true}, {"50%", false, true}, {"100%", false, true}, {"0", false, false}, {"0%", false, false},
		{"101%", false, false}, {"0", true, true}, {"-1", true, false}, {"1.5", true, false}, {"%", true, false},
		{"01", true, false}, {"", true, false}, {"10001", true, false},
	} {
		_, err := ParseRate("x", tc.in, tc.zeroOK)
		if (err == nil) != tc.ok {
			t.Errorf("ParseRate(%q, zeroOK=%v) = %v, want ok=%v", tc.in, tc.zeroOK, err, tc.ok)
		}
	}
	r, _ := ParseRate("x", "34%", false)
	if r.Of(7, true) != 3 || r.Of(7, false) != 2 || r.Of(1, true) != 1 {
		t.Errorf("34%% of 7: up %d down %d; of 1 up %d", r.Of(7, true), r.Of(7, false), r.Of(1, true))
	}
}
