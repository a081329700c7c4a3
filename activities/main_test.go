package activities

import (
	"testing"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/jail"
)

// TestMain stops the servers the package's tests share (moto, Temporal) when they are done.
// The test binary doubles as the sandboxes' init: the sandbox activity tests run sandboxd.
func TestMain(m *testing.M) {
	jail.MaybeInit()
	testenv.Main(m)
}
