package sandboxd

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/wire"
)

// imageList resolves image references against a fixed list, the way images.Store.Get does
// for a store holding those images with the first one its default; it lets create
// validation run without root.
type imageList []images.Image

func (l imageList) Get(ref string) (images.Image, error) {
	if ref == "" {
		return l[0], nil
	}
	for _, img := range l {
		if ref == img.Name || ref == img.Ref() {
			return img, nil
		}
	}
	return images.Image{}, anyops.Errorf(anyops.ENOTFOUND, "no image %q", ref)
}

func validatingServer() *Server {
	return &Server{images: imageList{{Name: "console", Version: "1", Root: "/images/console/1/root"}}}
}

// TestEffectiveLimits proves how requested limits combine with the plan's: zero keeps the
// plan's value, lower values are taken, and higher, negative or unworkably small ones refused.
func TestEffectiveLimits(t *testing.T) {
	free := anyops.PlanLimits(anyops.PlanFree)
	tests := []struct {
		name    string
		limits  *anyops.Limits
		idle    time.Duration
		want    func(*anyops.Limits)
		wantErr string
	}{
		{"nothing requested: the plan's limits", nil, 0, func(*anyops.Limits) {}, ""},
		{"lower memory and pids", &anyops.Limits{MemoryBytes: 64 << 20, Pids: 20}, 0, func(l *anyops.Limits) { l.MemoryBytes, l.Pids = 64<<20, 20 }, ""},
		{"exactly the plan's cpu shares", &anyops.Limits{CPUShares: free.CPUShares}, 0, func(*anyops.Limits) {}, ""},
		{"shorter idle timeout", nil, 5 * time.Second, func(l *anyops.Limits) { l.IdleTimeout = 5 * time.Second }, ""},
		{"more cpu than the plan", &anyops.Limits{CPUShares: free.CPUShares + 1}, 0, nil, "limits.cpu_shares 301 exceeds plan free's 300"},
		{"negative open files", &anyops.Limits{OpenFiles: -1}, 0, nil, "limits.open_files must not be negative"},
		{"tmp below a megabyte", &anyops.Limits{TmpBytes: 10}, 0, nil, "limits.tmp_bytes 10 is below the minimum"},
		{"idle timeout inside limits", &anyops.Limits{IdleTimeout: time.Second}, 0, nil, "use idle_timeout"},
		{"idle timeout too short", nil, time.Millisecond, nil, "idle_timeout 1ms is below the minimum of 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := effectiveLimits(anyops.PlanFree, wire.CreateRequest{Limits: tt.limits, IdleTimeout: wire.Duration(tt.idle)})
			if tt.wantErr != "" {
				if anyops.ErrorCode(err) != anyops.EINVALID || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want invalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := free
			tt.want(&want)
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

// FuzzCreateRequest proves that whatever body arrives, decoding and validation either refuse
// it as invalid or produce a spec inside the rules: never root, limits within the plan,
// a known image, a sane terminal.
func FuzzCreateRequest(f *testing.F) {
	f.Add(`{"user":"alice","uid":120001,"plan":"free"}`)
	f.Add(`{"user":"bob","uid":1000,"gid":100,"plan":"paid","image":"console:1","command":["python3"],"network":"host","limits":{"memory_bytes":1048576000},"idle_timeout":"5m","max_lifetime":"1h","rows":50,"cols":200}`)
	f.Add(`{"user":"x","uid":0,"plan":"tarpit"}`)
	f.Add(`{"user":"carol","uid":3000,"plan":"paid","network":"internet"}`)
	f.Add(`{"user":"dave","uid":3001,"plan":"free","network":"internet"}`)
	f.Add(`{"user":"x","uid":2000,"plan":"anonymous","limits":{"pids":-1}}`)
	f.Add(`{"id":"console-1","user":"x","uid":2000,"plan":"free","idle_timeout":"1s"}`)
	f.Add(`{"id":"sb-1","user":"x","uid":100001,"gid":42,"plan":"free","lease":"30s"}`)
	s := validatingServer()
	f.Fuzz(func(t *testing.T, body string) {
		var req wire.CreateRequest
		err := decodeJSON([]byte(body), &req)
		if err == nil {
			var spec sandboxSpec
			var info wire.Sandbox
			spec, info, err = s.validateCreate(req)
			if err == nil {
				checkSpec(t, spec, info)
				return
			}
		}
		if code := anyops.ErrorCode(err); code != anyops.EINVALID {
			t.Fatalf("body %q: error %v has code %q, want invalid", body, err, code)
		}
	})
}

func checkSpec(t *testing.T, spec sandboxSpec, info wire.Sandbox) {
	t.Helper()
	plan := anyops.PlanLimits(info.Plan)
	l := spec.Limits
	switch {
	case spec.UID < anyops.FirstSandboxID || spec.UID > anyops.LastSandboxID ||
		spec.GID < anyops.FirstSandboxID || spec.GID > anyops.LastSandboxID:
		t.Fatalf("accepted uid %d gid %d", spec.UID, spec.GID)
	case !userPattern.MatchString(spec.User):
		t.Fatalf("accepted user %q", spec.User)
	case spec.ImageRoot != "/images/console/1/root":
		t.Fatalf("accepted image root %q", spec.ImageRoot)
	case !spec.Network.Within(anyops.PlanNetwork(info.Plan)) || spec.Network != info.Network:
		t.Fatalf("accepted network %q for plan %s", spec.Network, info.Plan)
	case spec.Rows < 1 || spec.Cols < 1 || spec.Rows > maxTermSize || spec.Cols > maxTermSize:
		t.Fatalf("accepted terminal %dx%d", spec.Rows, spec.Cols)
	case l.CPUShares < minLimits.CPUShares || l.CPUShares > plan.CPUShares,
		l.MemoryBytes < minLimits.MemoryBytes || l.MemoryBytes > plan.MemoryBytes,
		l.Pids < minLimits.Pids || l.Pids > plan.Pids,
		l.OpenFiles < minLimits.OpenFiles || l.OpenFiles > plan.OpenFiles,
		l.FileSize < minLimits.FileSize || l.FileSize > plan.FileSize,
		l.TmpBytes < minLimits.TmpBytes || l.TmpBytes > plan.TmpBytes,
		l.HomeBytes < minLimits.HomeBytes || l.HomeBytes > plan.HomeBytes,
		l.IdleTimeout < minLimits.IdleTimeout || l.IdleTimeout > plan.IdleTimeout,
		l.MaxLifetime < minLimits.MaxLifetime || l.MaxLifetime > plan.MaxLifetime:
		b, _ := json.Marshal(l)
		t.Fatalf("accepted limits %s outside plan %s", b, info.Plan)
	}
}
