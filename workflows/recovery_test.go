package workflows

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
)

// TestRecoveryPrepare proves the three recovery kinds take what the alarm intake sends
// ({"server", "incident_id"}) and what an operator may add (timing, policy), name their one
// workflow after the server (failover/<server>, backup-rebuild/<server>, replace/<server>),
// and refuse bad bodies with EINVALID saying why.
func TestRecoveryPrepare(t *testing.T) {
	for _, k := range []struct{ kind, id string }{
		{KindFailover, anyops.FailoverWorkflowID("live-file")},
		{KindBackupRebuild, anyops.BackupRebuildWorkflowID("live-file")},
		{KindServerReplace, anyops.ServerReplaceWorkflowID("live-file")},
	} {
		t.Run(k.kind, func(t *testing.T) {
			checkPrepare(t, k.kind, k.id, []prepareCase{
				{"the intake's body", `{"server":"live-file","incident_id":7}`, "", nil},
				{"the intake's probe for the business key", `{"server":"live-file","incident_id":0}`, "", nil},
				{"by hand with a timing", `{"server":"live-file","timing":{"poll_interval":1000000000,"stop_timeout":60000000000}}`, "", nil},
				{"no server", `{}`, "is not a server name", nil},
				{"a server name with a slash", `{"server":"live/file"}`, "is not a server name", nil},
				{"negative incident", `{"server":"live-file","incident_id":-1}`, "incident_id must not be negative", nil},
				{"requested_by is the server's", `{"server":"live-file","requested_by":"mallory"}`, "requested_by is set by the server", nil},
				{"negative timing", `{"server":"live-file","timing":{"boot_timeout":-1}}`, "timing.boot_timeout", nil},
				{"unknown field", `{"server":"live-file","zone":"us-east-1a"}`, `unknown field "zone"`, nil},
				{"an image id too long", `{"server":"live-file","policy":{"image_id":"ami-` + strings.Repeat("0", 130) + `"}}`, "policy.image_id is longer than 128 bytes", nil},
			})
		})
	}
	checkPrepare(t, KindFailover, anyops.FailoverWorkflowID("live-file"), []prepareCase{
		{"a policy", `{"server":"live-file","policy":{"approve_cutover":true,"ways":["promote","replace"],"losers":"clean"}}`, "", func(in any) bool {
			p := in.(FailoverInput).Policy
			return p.ApproveCutover && len(p.Ways) == 2 && p.Losers == anyops.LosersClean
		}},
		{"an unknown way", `{"server":"live-file","policy":{"ways":["pray"]}}`, `policy.ways "pray" is not one of`, nil},
		{"a way twice", `{"server":"live-file","policy":{"ways":["repair","repair"]}}`, "names repair twice", nil},
		{"an unknown loser policy", `{"server":"live-file","policy":{"losers":"burn"}}`, `policy.losers "burn"`, nil},
		{"an unknown seed policy", `{"server":"live-file","policy":{"seed":"pray"}}`, `policy.seed "pray"`, nil},
	})
	// BackupRebuild's own field is checked too, after the request and before timing and policy.
	checkPrepare(t, KindBackupRebuild, anyops.BackupRebuildWorkflowID("live-file"), []prepareCase{
		{"onto a kept server", `{"server":"live-file","onto":"live-file-kept"}`, "", func(in any) bool {
			return in.(BackupRebuildInput).Onto == "live-file-kept"
		}},
		{"onto not a server name", `{"server":"live-file","onto":"Live File"}`, `onto "Live File" is not a server name`, nil},
		{"onto checked before timing", `{"server":"live-file","onto":"x/y","timing":{"boot_timeout":-1}}`, "onto", nil},
		{"an unknown seed policy", `{"server":"live-file","policy":{"seed":"pray"}}`, `policy.seed "pray"`, nil},
	})
}

// TestRecoverySearchAttributes proves a recovery starts with its Server and, when an alarm
// opened one, its Incident, so ops can filter for them in the Temporal UI.
func TestRecoverySearchAttributes(t *testing.T) {
	kind, _ := LookupKind(KindFailover)
	start, err := kind.Prepare([]byte(`{"server":"live-file","incident_id":42}`), "alarm:sns")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := start.SearchAttributes.GetKeyword(SearchServer); !ok || v != "live-file" {
		t.Errorf("Server = %q, %v", v, ok)
	}
	if v, ok := start.SearchAttributes.GetKeyword(SearchIncident); !ok || v != "42" {
		t.Errorf("Incident = %q, %v", v, ok)
	}
	b, _ := json.Marshal(start.Input)
	var in FailoverInput
	if err := json.Unmarshal(b, &in); err != nil || in.Server != "live-file" || in.IncidentID != 42 || in.RequestedBy != "alarm:sns" {
		t.Errorf("input %s decodes to %+v, %v", b, in, err)
	}
}

// TestRecoveryTimingScaled proves the timing policy's defaults are production values and that
// scaling by cloudsim's speed shrinks what the workflow waits on while real-time bounds stay.
func TestRecoveryTimingScaled(t *testing.T) {
	def := RecoveryTiming{}.withDefaults()
	if def.PollInterval != DefaultRecoveryPollInterval || def.StopTimeout != DefaultStopTimeout || def.BuildTimeout != DefaultBuildTimeout {
		t.Fatalf("defaults %+v", def)
	}
	s := RecoveryTiming{}.Scaled(60)
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"poll interval", s.PollInterval, DefaultRecoveryPollInterval / 60},
		{"stop timeout", s.StopTimeout, DefaultStopTimeout / 60},
		{"build timeout", s.BuildTimeout, DefaultBuildTimeout / 60},
		{"dns timeout keeps its floor", s.DNSTimeout, minScaledTimeout},
		{"call timeout is real time", s.CallTimeout, DefaultCallTimeout},
		{"heartbeat timeout is real time", s.HeartbeatTimeout, DefaultHeartbeatTimeout},
		{"a host's bound is in the host's (simulated) clock", s.onHost(s.BuildTimeout), DefaultBuildTimeout},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.got, c.want)
		}
	}
}

// TestRedundancyInTheCloudsClock proves the time without a hot backup is told in the cloud's
// clock: under a policy scaled for a simulated cloud, the workflow's seconds times its speed.
func TestRedundancyInTheCloudsClock(t *testing.T) {
	since := time.Date(2014, 7, 15, 9, 0, 0, 0, time.UTC)
	restored := since.Add(12 * time.Second)
	for _, tc := range []struct {
		speed float64
		want  float64
	}{{0, 12}, {1, 12}, {50, 600}} {
		r := Redundancy{NoHotBackupSince: &since, RestoredAt: &restored, Speed: RecoveryTiming{}.Scaled(tc.speed).Speed}
		if got := r.cloudSeconds(r.RestoredAt.Sub(*r.NoHotBackupSince)); got != tc.want {
			t.Errorf("speed %v: %v s without a hot backup, want %v", tc.speed, got, tc.want)
		}
	}
}
