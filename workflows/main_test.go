package workflows

import (
	"testing"

	"github.com/anyops/anyops/sandboxd/sandboxdtest"
)

// TestMain stops the Temporal dev server the package's tests share when they are done.
// The test binary doubles as the sandboxes' init: the console tests run real sandboxds.
func TestMain(m *testing.M) { sandboxdtest.Main(m) }
