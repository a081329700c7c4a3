package main

import (
	"encoding/json"

	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/sandboxd/images"
)

// newImageCmd is `anyops image`: the sandbox images of this console host, in the store
// sandboxd reads (docs/sandboxd.md, "Images").
func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build, list and choose the sandbox images of this console host (Debian roots built with mmdebstrap)",
	}
	cmd.AddCommand(newImageBuildCmd(), newImageListCmd(), newImageDefaultCmd(), newImageShowCmd())
	return cmd
}

// imageFlags are the settings every `anyops image` command binds.
type imageFlags struct {
	common config.Common
	image  config.Image
	b      *config.Binder
}

func bindImageFlags(cmd *cobra.Command) *imageFlags {
	f := &imageFlags{b: config.NewBinder(cmd.Flags())}
	f.b.BindCommon(&f.common)
	f.b.BindImage(&f.image)
	return f
}

// open loads the settings and opens the store: --store, else sandboxd's default of the data
// dir (<data-dir>/sandboxd/images).
func (f *imageFlags) open() (*images.Store, error) {
	if err := f.b.Load(); err != nil {
		return nil, err
	}
	dir := f.image.Store
	if dir == "" {
		dir = filepath.Join(f.common.DefaultPath("", "sandboxd"), "images")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return images.Open(abs)
}

func newImageBuildCmd() *cobra.Command {
	var packages string
	var makeDefault bool
	cmd := &cobra.Command{
		Use:   "build NAME:VERSION --packages PKG,...",
		Short: "Build an image from Debian packages (as root; an image already built is not rebuilt)",
		Long: `Build NAME:VERSION: the Essential:yes packages of the suite and --packages with what they
depend on, installed by mmdebstrap into a root filesystem, with a manifest of every package's
version. A version, once built, never changes: building it again with the same packages
returns it at once, with other packages is refused. Run it on the console host, into the
store its sandboxd reads.`,
		Args: cobra.ExactArgs(1),
	}
	f := bindImageFlags(cmd)
	cmd.Flags().StringVar(&packages, "packages", "", "packages to install on top of the essential set, comma separated (pkg or pkg=version)")
	cmd.Flags().BoolVar(&makeDefault, "default", false, "make it the store's default image once built")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name, version, err := images.ParseRef(args[0])
		if err != nil {
			return err
		}
		store, err := f.open()
		if err != nil {
			return err
		}
		var mirrors []string
		for _, m := range strings.Split(f.image.Mirrors, ",") {
			if m = strings.TrimSpace(m); m != "" {
				mirrors = append(mirrors, m)
			}
		}
		recipe := images.Recipe{Suite: f.image.Suite, Mirrors: mirrors, Packages: strings.Split(packages, ",")}
		img, built, err := store.Build(cmd.Context(), name, version, recipe, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		m, err := store.Manifest(img)
		if err != nil {
			return err
		}
		what := "built"
		if !built {
			what = "already built, not rebuilt:"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s in %s: %d packages, %s\n", what, img.Ref(), store.Dir(), len(m.Packages), images.HumanSize(m.SizeBytes))
		if makeDefault {
			if _, err := store.SetDefault(img.Ref()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "default image: %s\n", img.Ref())
		}
		return nil
	}
	return cmd
}

func newImageListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the images of the store: name, version, packages, size, created, default",
		Args:  cobra.NoArgs,
	}
	f := bindImageFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		store, err := f.open()
		if err != nil {
			return err
		}
		def, err := store.Default()
		if err != nil && anyops.ErrorCode(err) != anyops.ENOTFOUND {
			return err
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tVERSION\tPACKAGES\tSIZE\tCREATED\tDEFAULT")
		for _, img := range store.List() {
			m, err := store.Manifest(img)
			if err != nil {
				return err
			}
			mark := ""
			if img == def {
				mark = "default"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", img.Name, img.Version, len(m.Packages), images.HumanSize(m.SizeBytes),
				m.CreatedAt.UTC().Format(time.RFC3339), mark)
		}
		return w.Flush()
	}
	return cmd
}

func newImageDefaultCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "default NAME:VERSION",
		Short: "Make an image the store's default: the image of a sandbox whose request names none",
		Args:  cobra.ExactArgs(1),
	}
	f := bindImageFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		store, err := f.open()
		if err != nil {
			return err
		}
		img, err := store.SetDefault(args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "default image: %s\n", img.Ref())
		return nil
	}
	return cmd
}

func newImageShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NAME:VERSION",
		Short: "Print an image's manifest (JSON): its recipe and every package's version",
		Args:  cobra.ExactArgs(1),
	}
	f := bindImageFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if _, _, err := images.ParseRef(args[0]); err != nil {
			return err
		}
		store, err := f.open()
		if err != nil {
			return err
		}
		img, err := store.Get(args[0])
		if err != nil {
			return err
		}
		m, err := store.Manifest(img)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	}
	return cmd
}
