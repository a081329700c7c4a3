package workflows

import (
	"testing"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/jail"
)

// TestMain stops the Temporal dev server the package's tests share when they are done.
// The test binary doubles as the sandboxes' init: the console tests run real sandboxds.
func TestMain(m *testing.M) {
	jail.MaybeInit()
	testenv.Main(m)
}
