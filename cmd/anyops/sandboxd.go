package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/sandboxd"
	"github.com/anyops/anyops/sandboxd/homes"
	"github.com/anyops/anyops/sandboxd/token"
)

func newSandboxdCmd() *cobra.Command {
	var common config.Common
	var sc config.Sandboxd
	cmd := &cobra.Command{
		Use:   "sandboxd",
		Short: "Run the console daemon of this host: sandboxes, PTYs, WebSocket terminals (as root)",
		Args:  cobra.NoArgs,
	}
	b := config.NewBinder(cmd.Flags())
	b.BindCommon(&common)
	b.BindSandboxd(&sc, "")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := b.Load(); err != nil {
			return err
		}
		log, err := common.NewLogger(os.Stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "anyops sandboxd settings:")
		b.Print(cmd.ErrOrStderr())
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		cfg, err := sandboxdConfig(common, sc, log)
		if err != nil {
			return err
		}
		return sandboxd.Run(ctx, cfg)
	}
	cmd.AddCommand(newSandboxdKeygenCmd(), newSandboxdTokenCmd())
	return cmd
}

// sandboxdConfig turns the bound settings into sandboxd's Config, applying the data-dir
// defaults and making paths absolute (the jail and the image store need them so); `anyops
// dev` uses it for the sandboxd it runs.
func sandboxdConfig(common config.Common, sc config.Sandboxd, log *slog.Logger) (sandboxd.Config, error) {
	storage, err := filepath.Abs(common.DefaultPath(sc.StorageRoot, "homes"))
	if err != nil {
		return sandboxd.Config{}, err
	}
	state, err := filepath.Abs(common.DefaultPath(sc.StateDir, "sandboxd"))
	if err != nil {
		return sandboxd.Config{}, err
	}
	imageStore := filepath.Join(state, "images")
	if sc.ImageStore != "" {
		if imageStore, err = filepath.Abs(sc.ImageStore); err != nil {
			return sandboxd.Config{}, err
		}
	}
	netCfg, err := sc.NetworkConfig()
	if err != nil {
		return sandboxd.Config{}, err
	}
	netCfg.Logger = log
	return sandboxd.Config{
		Addr:           sc.Addr,
		URL:            sc.URL,
		PublicKeyFile:  sc.PublicKey,
		PublicKeyDir:   sc.PublicKeyDir,
		StorageRoot:    storage,
		HomeQuota:      homes.Mode(sc.HomeQuota),
		StateDir:       state,
		ImageStore:     imageStore,
		Slots:          sc.Slots,
		CgroupParent:   sc.CgroupParent,
		AllowedOrigins: config.SplitList(sc.AllowedOrigins),
		Network:        netCfg,
		Logger:         log,
	}, nil
}

func newSandboxdKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Write a new Ed25519 key pair: FILE (private, for the API) and FILE.pub (for sandboxd); prints its key id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out FILE is required")
			}
			_, priv, err := token.GenerateKey()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
				return err
			}
			if err := token.WriteKeyPair(out, out+".pub", priv); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key id:      %s\nprivate key: %s (give to anyops api and worker --sandboxd-key)\npublic key:  %s.pub (give to anyops sandboxd --public-key, or put in its --public-key-dir)\n",
				token.KeyID(priv.Public().(ed25519.PublicKey)), out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "private key file to create; the public key goes to FILE.pub")
	return cmd
}

func newSandboxdTokenCmd() *cobra.Command {
	var keyFile, aud, op, sandbox, bodyFile, sub string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint a sandboxd token from the private key (for operators and tests)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" {
				return errors.New("--key FILE is required")
			}
			if ttl <= 0 {
				return fmt.Errorf("--ttl must be positive, got %s", ttl)
			}
			priv, err := token.ReadPrivateKey(keyFile)
			if err != nil {
				return err
			}
			var body []byte
			if token.Op(op) == token.OpCreate {
				if bodyFile == "" {
					return errors.New("--body FILE is required for create: the token is bound to the exact request body")
				}
				if body, err = os.ReadFile(bodyFile); err != nil {
					return err
				}
			}
			tok, err := token.NewSigner(priv).Mint(token.Grant{Audience: aud, Op: token.Op(op), Sandbox: sandbox, Body: body}, sub, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key", "", "Ed25519 private key file (from keygen)")
	f.StringVar(&aud, "aud", "http://127.0.0.1:8090", "the sandboxd the token is for: its --url")
	f.StringVar(&op, "op", "", fmt.Sprintf("operation: one of %v", token.Ops))
	f.StringVar(&sandbox, "sandbox", token.AnySandbox, `sandbox id (create names the id in its body), or "*" for list and capacity`)
	f.StringVar(&bodyFile, "body", "", "create only: the file holding the exact request body to send")
	f.StringVar(&sub, "sub", "operator", "who the token is for (logged)")
	f.DurationVar(&ttl, "ttl", 5*time.Minute, "how long the token is valid")
	return cmd
}
