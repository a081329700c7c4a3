package anyops_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"

	"github.com/anyops/anyops/config"
)

// knownEnv is every ANYOPS_* variable some command reads: what compose may set.
func knownEnv() map[string]bool {
	known := map[string]bool{}
	// One flag set per command, as the commands bind them (sandboxd and cloudsim both have --addr).
	binds := []func(b *config.Binder){
		func(b *config.Binder) {
			b.BindCommon(&config.Common{})
			b.BindDB(&config.DB{})
			b.BindTemporal(&config.Temporal{})
			b.BindAPI(&config.API{})
			w := &config.Worker{}
			b.BindWorker(w)
			b.BindWorkerMetrics(w)
			b.BindSigning(&config.Signing{})
			b.BindAWS(&config.AWS{})
		},
		func(b *config.Binder) { b.BindSandboxd(&config.Sandboxd{}, "") },
		func(b *config.Binder) { b.BindCloudsim(&config.Cloudsim{}, "") },
	}
	for _, bind := range binds {
		b := config.NewBinder(pflag.NewFlagSet("cmd", pflag.ContinueOnError))
		bind(b)
		for _, env := range b.EnvNames() {
			known[env] = true
		}
	}
	return known
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"},
		cli.WithWorkingDirectory("."),
		cli.WithName("anyops"),
		cli.WithEnv([]string{"ANYOPS_TOKENS=admin:test", "POSTGRES_PASSWORD=pw"}),
		cli.WithInterpolation(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// TestComposeProductionShape loads docker-compose.yml with the compose-spec library (no Docker
// engine runs here) and checks that the services of the production shape exist, are built or
// pinned, expose the documented ports, start in a safe order and are wired to each other.
func TestComposeProductionShape(t *testing.T) {
	p := loadCompose(t)
	svc := func(name string) types.ServiceConfig {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		return s
	}

	for _, name := range []string{"migrate", "api", "worker", "sandboxd"} {
		if s := svc(name); s.Build == nil || s.Build.Context == "" {
			t.Errorf("%s must be built from the Dockerfile", name)
		}
	}
	if _, err := os.Stat("Dockerfile"); err != nil {
		t.Errorf("Dockerfile: %v", err)
	}
	for _, name := range []string{"postgres", "temporal", "temporal-ui", "temporal-setup"} {
		if img := svc(name).Image; img == "" || !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
			t.Errorf("%s image %q must be pinned to a version", name, img)
		}
	}

	ports := map[string]string{"api": "8080", "temporal": "7233", "temporal-ui": "8233", "sandboxd": "8090"}
	for name, published := range ports {
		found := false
		for _, port := range svc(name).Ports {
			found = found || port.Published == published
		}
		if !found {
			t.Errorf("%s does not publish port %s", name, published)
		}
	}

	dependsOn := map[string][]string{
		"temporal": {"postgres"}, "temporal-ui": {"temporal"}, "temporal-setup": {"temporal"},
		"migrate": {"postgres"}, "api": {"migrate", "temporal-setup"}, "worker": {"migrate", "temporal-setup"},
	}
	for name, deps := range dependsOn {
		for _, dep := range deps {
			if _, ok := svc(name).DependsOn[dep]; !ok {
				t.Errorf("%s must depend on %s", name, dep)
			}
		}
	}
	if cond := svc("api").DependsOn["migrate"].Condition; cond != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("api must wait for migrate to complete, has condition %q", cond)
	}

	if w := svc("worker"); w.Deploy == nil || w.Deploy.Replicas == nil || *w.Deploy.Replicas < 2 {
		t.Errorf("worker must run several replicas")
	}
	if !svc("sandboxd").Privileged {
		t.Errorf("sandboxd must be privileged: it builds namespaces, mounts and cgroups")
	}

	// Env wiring: everything that talks to Temporal or the DB names the right service and port.
	known := knownEnv()
	for _, name := range []string{"migrate", "api", "worker", "sandboxd"} {
		env := svc(name).Environment
		for k := range env {
			if strings.HasPrefix(k, "ANYOPS_") && !known[k] {
				t.Errorf("%s sets %s, which no anyops flag reads", name, k)
			}
		}
		if name == "sandboxd" {
			continue
		}
		if v := env["ANYOPS_TEMPORAL_ADDR"]; v == nil || *v != "temporal:7233" {
			t.Errorf("%s: ANYOPS_TEMPORAL_ADDR = %v, want temporal:7233", name, deref(v))
		}
		dsn := env["ANYOPS_DB_DSN"]
		if dsn == nil {
			t.Errorf("%s: ANYOPS_DB_DSN unset", name)
			continue
		}
		u, err := url.Parse(*dsn)
		if err != nil || u.Hostname() != "postgres" || u.Port() != "5432" || u.Path != "/anyops" {
			t.Errorf("%s: ANYOPS_DB_DSN %q must point at postgres:5432/anyops", name, *dsn)
		}
		if pw, _ := u.User.Password(); pw != "pw" {
			t.Errorf("%s: DSN password not taken from POSTGRES_PASSWORD", name)
		}
	}
	if v := svc("temporal-ui").Environment["TEMPORAL_ADDRESS"]; v == nil || *v != "temporal:7233" {
		t.Errorf("temporal-ui TEMPORAL_ADDRESS = %v", deref(v))
	}
	if v := svc("temporal").Environment["POSTGRES_SEEDS"]; v == nil || *v != "postgres" {
		t.Errorf("temporal must store its state in the postgres service")
	}
	if v := svc("api").Environment["ANYOPS_TOKENS"]; v == nil || *v != "admin:test" {
		t.Errorf("api tokens not taken from the environment")
	}
}

func deref(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return *p
}
