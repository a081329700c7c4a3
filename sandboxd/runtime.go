package sandboxd

import (
	"context"
	"os"

	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/jail"
)

// runtime is what the daemon needs of the isolation layer. In production it is the jail
// package (see jail.go); the seam keeps sessions, tokens and the HTTP API independent of how
// a sandbox is built.
type runtime interface {
	// Start runs spec's command in a new sandbox on a PTY.
	Start(ctx context.Context, spec sandboxSpec) (process, error)
	// CleanupStale kills and removes what an earlier daemon left behind.
	CleanupStale() (int, error)
}

// process is one running sandbox.
type process interface {
	PTY() *os.File
	Pid() int
	Wait() (exitCode int, err error)
	Destroy() error // kills the whole tree, removes mounts and cgroups; idempotent
}

// sandboxSpec describes a sandbox to start: the jail's own Spec, so the two never drift.
type sandboxSpec = jail.Spec

// image is a resolved image reference.
type image = images.Image

// imageResolver finds images by reference ("name:version", "name" for its newest version, ""
// for the host's default).
type imageResolver interface {
	Get(ref string) (image, error)
}
