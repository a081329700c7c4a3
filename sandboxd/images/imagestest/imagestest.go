// Package imagestest gives tests real images: built with mmdebstrap into the machine's image
// cache (images.OpenCache) the first time a test asks for them, and found there by every
// later run, of any package, at once. A missing mmdebstrap fails the test where CI is set
// (a fresh CI machine builds the images) and skips it elsewhere.
package imagestest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/images"
)

// Store is the image cache of this machine. It needs root: images are built as root and
// their roots belong to root.
func Store(t testing.TB) *images.Store {
	t.Helper()
	testenv.RequireRoot(t)
	s, err := images.OpenCache()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Build returns name:version of the cache, building it from r first when it is not there.
// Give a test image a name that changes with its recipe (Recipe.Key): a cached version is
// never rebuilt, so a changed recipe under an old name would be a conflict.
func Build(t testing.TB, name, version string, r images.Recipe) images.Image {
	t.Helper()
	s := Store(t)
	img, _, err := s.Build(context.Background(), name, version, r, logWriter{t})
	if errors.Is(err, images.ErrNoBuilder) {
		testenv.Missing(t, "mmdebstrap, to build the test image %s:%s (apt-get install mmdebstrap)", name, version)
	}
	if err != nil {
		t.Fatalf("build test image %s:%s: %v", name, version, err)
	}
	return img
}

// Console returns the console image (bash, python3) of the cache, built when missing, and
// makes it the cache's default: the image of a sandbox whose request names none.
func Console(t testing.TB) (*images.Store, images.Image) {
	t.Helper()
	s := Store(t)
	img := Build(t, images.ConsoleImageName, images.ConsoleImageVersion(), images.ConsoleRecipe)
	switch def, err := s.Default(); {
	case err == nil && def == img:
	case err == nil || anyops.ErrorCode(err) == anyops.ENOTFOUND:
		if _, err := s.SetDefault(img.Ref()); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal(err)
	}
	return s, img
}

// logWriter logs a build's progress, a line at a time, on the test's log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(bytes.TrimRight(p, "\n")), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			w.t.Log(line)
		}
	}
	return len(p), nil
}

// PinRecipes are two small images with different packages, for tests of pinning: version 1
// holds GNU hello, version 2 tree instead (each on the essential set).
var PinRecipes = [2]images.Recipe{{Packages: []string{"hello"}}, {Packages: []string{"tree"}}}

// Pinned returns versions 1 and 2 of the pin image, built from PinRecipes into the cache when
// missing; its name changes with either recipe.
func Pinned(t testing.TB) (v1, v2 images.Image) {
	t.Helper()
	name := fmt.Sprintf("pin-%s-%s", PinRecipes[0].Key()[:8], PinRecipes[1].Key()[:8])
	return Build(t, name, "1", PinRecipes[0]), Build(t, name, "2", PinRecipes[1])
}
