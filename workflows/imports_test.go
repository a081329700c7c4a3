package workflows

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/anyops/anyops/internal/testenv"
)

// forbiddenInWorkflows are the packages deterministic workflow code must not reach: the
// inventory and its database drivers, and HTTP clients. Workflows use the root package and
// the activities' names and types only.
var forbiddenInWorkflows = []string{
	"github.com/anyops/anyops/inventory",
	"gorm.io/",
	"github.com/jackc/pgx",
	"github.com/glebarez/",
	"modernc.org/sqlite",
	"net/http",
}

// activitiesPackage is the one package of ours workflows may import without its own
// dependencies counting against them: they refer to its activities by method value and use
// its input and output types, and never run its code.
const activitiesPackage = "github.com/anyops/anyops/activities"

// TestWorkflowsImportNoStorageOrHTTP proves that no workflows package (test files aside)
// imports the inventory, GORM, pgx, SQLite or net/http, nor does any package of this module
// that workflow code reaches other than through the activities package (the root package
// `anyops`, for one). It reads the import graph from `go list -deps`.
func TestWorkflowsImportNoStorageOrHTTP(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Module,DepOnly", "./workflows/...")
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		DepOnly    bool
		Module     *struct{ Path string }
	}
	pkgs := map[string]pkg{}
	var roots []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
		if !p.DepOnly {
			roots = append(roots, p.ImportPath)
		}
	}
	if len(roots) == 0 {
		t.Fatal("go list found no workflows package")
	}
	ours := func(path string) bool {
		p, ok := pkgs[path]
		return ok && p.Module != nil && p.Module.Path == "github.com/anyops/anyops"
	}
	// Walk our own packages reachable from workflows, not through activities.
	seen := map[string]bool{}
	queue := append([]string(nil), roots...)
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if seen[path] {
			continue
		}
		seen[path] = true
		for _, imp := range pkgs[path].Imports {
			for _, bad := range forbiddenInWorkflows {
				if imp == strings.TrimSuffix(bad, "/") || strings.HasPrefix(imp, bad) {
					t.Errorf("%s imports %s: workflow code must not reach %s", path, imp, bad)
				}
			}
			if imp != activitiesPackage && ours(imp) {
				queue = append(queue, imp)
			}
		}
	}
}
