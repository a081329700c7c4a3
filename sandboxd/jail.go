package sandboxd

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/jail"
)

// openJail opens the real runtime and image store: the jail's state in <StateDir>/jail,
// images in cfg.ImageStore (default <StateDir>/images).
func openJail(cfg Config) (jailRuntime, *images.Store, error) {
	if cfg.StateDir == "" || !filepath.IsAbs(cfg.StateDir) {
		return jailRuntime{}, nil, fmt.Errorf("sandboxd: state dir %q must be an absolute path", cfg.StateDir)
	}
	m, err := jail.NewManager(jail.Config{StateDir: filepath.Join(cfg.StateDir, "jail"), CgroupParent: cfg.CgroupParent, Network: cfg.Network})
	if err != nil {
		return jailRuntime{}, nil, err
	}
	dir := cfg.ImageStore
	if dir == "" {
		dir = filepath.Join(cfg.StateDir, "images")
	}
	store, err := images.Open(dir)
	if err != nil {
		_ = m.Close() // its network table
		return jailRuntime{}, nil, err
	}
	return jailRuntime{m}, store, nil
}

type jailRuntime struct{ m *jail.Manager }

func (r jailRuntime) Start(ctx context.Context, s sandboxSpec) (process, error) {
	sb, err := r.m.Start(ctx, s)
	if err != nil {
		return nil, err
	}
	return sb, nil
}

func (r jailRuntime) CleanupStale() (int, error) { return r.m.CleanupStale() }
