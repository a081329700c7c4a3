package main

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/inventory"
)

// newTokenCmd manages the people's API tokens in the inventory: each names its holder, whom
// audit events then record. (--tokens on `anyops api` remains for bootstrapping: name:role:token.)
func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the API tokens of people (kept in the inventory as SHA-256)",
	}
	cmd.AddCommand(tokenSubcommand("create", "Make a token for --name with --role and print it (shown this once)",
		func(ctx context.Context, c *cobra.Command, store *inventory.Store, name, role string) error {
			if name == "" {
				return errors.New("--name NAME is required")
			}
			by := "cli"
			if u, err := user.Current(); err == nil {
				by = "cli:" + u.Username
			}
			secret, err := api.CreateToken(ctx, store, name, api.AccessRole(role), by)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), secret)
			return nil
		}),
		tokenSubcommand("list", "List the tokens' names and roles",
			func(ctx context.Context, c *cobra.Command, store *inventory.Store, _, _ string) error {
				tokens, err := store.ListAPITokens(ctx)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tROLE\tCREATED BY\tCREATED AT")
				for _, t := range tokens {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.Role, t.CreatedBy, t.CreatedAt.Format("2006-01-02 15:04:05Z"))
				}
				return w.Flush()
			}),
		tokenSubcommand("revoke", "Revoke the token of --name; the API refuses it from the next request on",
			func(ctx context.Context, c *cobra.Command, store *inventory.Store, name, _ string) error {
				if name == "" {
					return errors.New("--name NAME is required")
				}
				if err := store.DeleteAPIToken(ctx, name); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "revoked the token of %s\n", name)
				return nil
			}))
	return cmd
}

// tokenSubcommand is one `anyops token` command on the inventory database.
func tokenSubcommand(use, short string, run func(ctx context.Context, c *cobra.Command, store *inventory.Store, name, role string) error) *cobra.Command {
	var (
		common     config.Common
		db         config.DB
		name, role string
	)
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	b := config.NewBinder(cmd.Flags())
	b.BindCommon(&common)
	b.BindDB(&db)
	if use != "list" {
		cmd.Flags().StringVar(&name, "name", "", "the person the token is for (lower case; an e-mail address works)")
	}
	if use == "create" {
		cmd.Flags().StringVar(&role, "role", string(api.RoleViewer), fmt.Sprintf("one of %v", api.AccessRoles))
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		if err := b.Load(); err != nil {
			return err
		}
		dsn, err := inventory.ResolveDSN(db.Driver, db.DSN, common.DataDir)
		if err != nil {
			return err
		}
		store, err := inventory.Open(c.Context(), db.Driver, dsn)
		if err != nil {
			return err
		}
		defer store.Close()
		return run(c.Context(), c, store, name, role)
	}
	return cmd
}
