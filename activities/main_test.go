package activities

import (
	"testing"

	"github.com/anyops/anyops/sandboxd/sandboxdtest"
)

// TestMain stops the servers the package's tests share (moto, Temporal) when they are done.
// The test binary doubles as the sandboxes' init: the sandbox activity tests run sandboxd.
func TestMain(m *testing.M) { sandboxdtest.Main(m) }
