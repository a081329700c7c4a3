package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/devstack"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/sandboxd"
	"github.com/anyops/anyops/sandboxd/homes"
	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/worker"
	"github.com/anyops/anyops/workflows"
)

// newDevCmd is `anyops dev`: the whole system in one command on its embedded defaults — a
// supervised Temporal dev server child, SQLite, cloudsim, sandboxd, the worker and the API —
// with a demo fleet. What it creates lives in the data dir, so a restart keeps the state.
func newDevCmd() *cobra.Command {
	var (
		common     config.Common
		db         config.DB
		tc         config.Temporal
		ac         config.API
		wc         config.Worker
		signing    config.Signing
		aws        config.AWS
		sim        config.Cloudsim
		sd         config.Sandboxd
		certs      config.Certificates
		smtp       config.SMTP
		uiAddr     string
		noSandboxd bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything locally: Temporal dev server, SQLite, cloudsim, sandboxd, worker, API, demo fleet",
		Args:  cobra.NoArgs,
	}
	b := config.NewBinder(cmd.Flags())
	b.BindCommon(&common)
	b.BindDB(&db)
	b.BindTemporal(&tc)
	b.BindAPI(&ac)
	b.BindWorker(&wc)
	b.BindSigning(&signing)
	b.BindCertificates(&certs)
	b.BindSMTP(&smtp)
	b.BindAWS(&aws)
	b.BindCloudsim(&sim, "cloudsim-")
	b.BindSandboxd(&sd, "sandboxd-")
	b.String(&uiAddr, "temporal-ui-addr", "", "127.0.0.1:8233", "Temporal Web UI listen address")
	b.Bool(&noSandboxd, "no-sandboxd", "", false, "do not run sandboxd (it needs root); consoles are then unavailable")
	// The public console embed is on in dev.
	_ = cmd.Flags().Set("public-embed", "true")
	cmd.Flags().Lookup("public-embed").DefValue = "true"

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := b.Load(); err != nil {
			return err
		}
		logger, err := startupLogger("dev", common, b)
		if err != nil {
			return err
		}
		if ac.TemporalUIURL == "" {
			ac.TemporalUIURL = "http://" + uiAddr // the dashboard links to the UI dev runs
		}

		runSandboxd := !noSandboxd
		if runSandboxd && os.Geteuid() != 0 {
			logger.Warn("sandboxd needs root: running without it, so consoles are unavailable (run as root, or pass --no-sandboxd to silence this)")
			runSandboxd = false
		}
		ports := map[string]string{"api-addr": ac.Addr, "temporal-addr": tc.Address, "temporal-ui-addr": uiAddr, "cloudsim-addr": sim.Addr,
			"cloudsim-sns-addr": sim.SNSAddr}
		if runSandboxd {
			ports["sandboxd-addr"] = sd.Addr
		}
		if err := devstack.CheckPortsFree(ports); err != nil {
			return err
		}
		dataDir, err := filepath.Abs(common.DataDir)
		if err != nil {
			return err
		}
		common.DataDir = dataDir
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return err
		}

		adminToken, err := devstack.EnsureToken(filepath.Join(dataDir, config.AdminTokenFile))
		if err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
		tokens := "admin:" + adminToken
		if ac.Tokens != "" {
			tokens += "," + ac.Tokens
		}
		auth, err := api.ParseTokens(tokens)
		if err != nil {
			return err
		}
		keyFile := signing.SandboxdKey
		if keyFile == "" {
			keyFile = filepath.Join(dataDir, "sandboxd.key")
		}
		sandboxdKey, err := token.EnsureKeyPair(keyFile)
		if err != nil {
			return fmt.Errorf("sandboxd key: %w", err)
		}
		signer := token.NewSigner(sandboxdKey)

		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()

		temporalBin, err := devstack.FindTemporal()
		if err != nil {
			return err
		}
		tmp, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
			Bin: temporalBin, Addr: tc.Address, UIAddr: uiAddr,
			DBFile:  filepath.Join(dataDir, "temporal.db"),
			LogFile: filepath.Join(dataDir, "temporal.log"),
			Logger:  logger,
		})
		if err != nil {
			return err
		}
		// However dev ends, the Temporal child goes with it.
		defer func() { stop(); <-tmp.Done() }()

		cp, err := openControlPlane(ctx, common, db, tc, sandboxdKey, logger)
		if err != nil {
			return err
		}
		defer cp.Close()
		if certs.PlatformDomain == "" {
			certs.PlatformDomain = "www." + inventory.DemoPlatformDomain
		}
		cp.certs, cp.smtp = certs, smtp
		cp.speed = sim.Speed // alarms' recoveries and the NFS probes run in cloudsim's time
		// Drills drive dev's own cloudsim, and give it back its speed when none runs.
		if wc.DrillCloudsim == "" {
			wc.DrillCloudsim = "http://" + sim.Addr
		}
		if wc.DrillBaseSpeed == 0 {
			wc.DrillBaseSpeed = sim.Speed
		}
		if cp.retiredKeys, err = readRetiredKeys(signing); err != nil {
			return err
		}

		// The worker reaches the cloud through cloudsim unless told otherwise.
		if aws.Endpoint == "" {
			aws.Endpoint = "http://" + sim.Addr
		}
		clouds, err := activities.NewClients(ctx, aws)
		if err != nil {
			return err
		}

		// Every server runs until ctx ends; the first to fail stops the others.
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		errs := make(chan error, 4)
		running := 0
		start := func(name string, run func(context.Context) error) {
			running++
			go func() {
				err := run(runCtx)
				if err != nil && !errors.Is(err, context.Canceled) {
					err = fmt.Errorf("%s: %w", name, err)
				} else {
					err = nil
				}
				errs <- err
			}()
		}

		// cloudsim plays CloudWatch and SNS: its SNS identity is a CA and a certificate of its
		// own in the data dir, which the API is configured to trust (docs/cloudsim.md).
		snsFiles, err := devSNSIdentity(dataDir, sim.SNSAddr)
		if err != nil {
			return fmt.Errorf("cloudsim's SNS certificate: %w", err)
		}
		sim.SNSCert, sim.SNSKey = snsFiles.Cert, snsFiles.Key
		// The API takes cloudsim's alarms on its production path: the topic, cloudsim's SNS
		// host for SigningCertURL and SubscribeURL, and its CA, by configuration (unless set).
		if ac.Alarms.SNSTopics == "" {
			ac.Alarms.SNSTopics = sim.SNSTopicARN
		}
		if ac.Alarms.SNSCertHosts == "" {
			ac.Alarms.SNSCertHosts = sim.SNSAddr
		}
		if ac.Alarms.SNSSigningCA == "" {
			ac.Alarms.SNSSigningCA = snsFiles.CA
		}
		simCfg := simConfig(sim)
		simCfg.StateFile, simCfg.Logger = filepath.Join(dataDir, "cloudsim.json"), logger.With("component", "cloudsim")
		start("cloudsim", func(ctx context.Context) error { return cloudsim.Run(ctx, simCfg) })
		go subscribeAPIToAlarms(runCtx, logger, ac.Addr, sim.Addr, sim.SNSTopicARN)
		// Ready means ready: /readyz answers 200, and "Anyops is running" is printed, once the
		// demo fleet is built and in the inventory and (with sandboxd) a console can be opened.
		stages := []string{stageDemoFleet}
		if runSandboxd {
			stages = append(stages, stageConsoleHost)
		}
		startup := devstack.NewStartup(stages...)
		stdout := cmd.OutOrStdout()
		// A stage that fails leaves the stack up but never ready: say so where "running" would be.
		failed := func(stage string, err error) {
			startup.Fail(stage, err)
			fmt.Fprintf(stdout, "\nAnyops is up but not ready: %s failed (the log says more). Ctrl-C stops everything.\n", stage)
		}

		sandboxdImage := make(chan struct{}) // closed once sandboxd has its default image
		if runSandboxd {
			if sd.CgroupParent == "" {
				// sandboxd clears its cgroup parent at start: one per data dir keeps two dev
				// stacks (or a dev stack and a test) from removing each other's sandboxes.
				sd.CgroupParent = fmt.Sprintf("anyops-dev-%08x", crc32.ChecksumIEEE([]byte(dataDir)))
			}
			if sd.AllowedOrigins == "" {
				// The console page runs on the API's origin: browsers attach from there.
				sd.AllowedOrigins = devAPIOrigins(ac.Addr)
			}
			sdCfg, err := sandboxdConfig(common, sd, logger.With("component", "sandboxd"))
			if err != nil {
				return err
			}
			sdCfg.PublicKey = signer.PublicKey()
			if sd.StorageRoot == "" && sdCfg.HomeQuota == homes.QuotaBtrfs {
				unmount, err := devHomeFileSystem(dataDir, sdCfg.StorageRoot)
				if err != nil {
					logger.Warn("no btrfs file system for the homes, so they have no quota (--sandboxd-home-quota none)", "err", err)
					sdCfg.HomeQuota = homes.QuotaNone
				} else {
					defer func() {
						if err := unmount(); err != nil {
							logger.Warn("unmount the homes file system", "err", err)
						}
					}()
				}
			}
			start("sandboxd", func(ctx context.Context) error {
				if err := ensureDevImage(ctx, sdCfg.ImageStore, cmd.ErrOrStderr()); err != nil {
					if ctx.Err() == nil {
						logger.Error("consoles are unavailable: no console image (fix the cause and restart)", "err", err)
						failed(stageConsoleHost, fmt.Errorf("no console image: %w", err))
					}
					<-ctx.Done() // the rest of the stack keeps running
					return nil
				}
				close(sandboxdImage)
				return sandboxd.Run(ctx, sdCfg)
			})
		}
		// Host commands run in cloudsim's time: their results are asked for as much more often.
		if sim.Speed > 1 {
			wc.CommandPoll = max(time.Duration(float64(wc.CommandPoll)/sim.Speed), 10*time.Millisecond)
		}
		start("worker", func(ctx context.Context) error { return cp.runWorker(ctx, wc, clouds, false) })
		start("api", func(ctx context.Context) error { return cp.runAPI(ctx, ac, auth, startup.Waiting) })

		// The demo fleet lives in cloudsim; the inventory is filled from the cloud. The
		// DemoFleet workflow is idempotent, so a restart joins or repeats it harmlessly.
		go func() {
			startup.Begin(stageDemoFleet, demoFleetProgress(cp.temporal))
			res, err := worker.EnsureDemoFleet(runCtx, cp.temporal, workflows.FleetTiming{PollInterval: time.Second}, nfsWatchTiming(wc, cp.speed))
			if err != nil {
				if runCtx.Err() == nil {
					logger.Error("demo fleet", "err", err)
					failed(stageDemoFleet, err)
				}
				return
			}
			logger.Info("demo fleet ready in cloudsim and the inventory", "instances", len(res.Instances), "volumes", len(res.Volumes))
			startup.Finish(stageDemoFleet)
			if runSandboxd {
				if err := openConsoleHost(runCtx, cp, startup, sandboxdImage, "http://"+sd.Addr, "http://"+ac.Addr, ac.PublicEmbed); err != nil && runCtx.Err() == nil {
					logger.Error("register the local sandboxd as a console host", "err", err)
					failed(stageConsoleHost, err)
				}
			}
		}()

		fmt.Fprintf(stdout, "\nAnyops is starting: building the demo fleet. http://%s/readyz says what is still coming.\n", ac.Addr)
		go func() {
			select {
			case <-startup.Ready():
			case <-runCtx.Done():
				return
			}
			// The sign-in link carries the admin token in its fragment, which a browser never
			// sends to a server: it is in no request line, no access log, and no slog line.
			fmt.Fprintf(stdout, `
Anyops is running. Ctrl-C stops everything.
  Dashboard          http://%s/dashboard#token=%s   (signs you in as admin)
  API                http://%s/   (health: /healthz, readiness: /readyz)
  Temporal Web UI    http://%s/
  Temporal frontend  %s
  cloudsim (EC2/SSM) http://%s/
  cloudsim SNS       https://%s/   (its CA: %s)
`, ac.Addr, url.QueryEscape(adminToken), ac.Addr, uiAddr, tc.Address, sim.Addr, sim.SNSAddr, snsFiles.CA)
			if runSandboxd {
				fmt.Fprintf(stdout, "  sandboxd           http://%s/\n", sd.Addr)
			}
			fmt.Fprintf(stdout, "  admin token        %s  (in %s)\n\n", config.Mask(adminToken), filepath.Join(dataDir, config.AdminTokenFile))
		}()

		var first error
		for ; running > 0; running-- {
			err := <-errs
			if err != nil && first == nil {
				first = err
				logger.Error("stopping everything", "err", err)
			}
			cancel()
		}
		return first
	}
	return cmd
}

// The stages `anyops dev` waits for before it is ready.
const (
	stageDemoFleet   = "demo-fleet"   // built in cloudsim and read into the inventory
	stageConsoleHost = "console-host" // the local sandboxd registered and taking consoles
)

// demoFleetProgress says how far the demo fleet is, from the Status query of the DemoFleet
// workflow and then of the FleetSync that reads it into the inventory.
func demoFleetProgress(tc client.Client) func(context.Context) string {
	return func(ctx context.Context) string {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := api.QueryStatus(ctx, tc, workflows.DemoFleetWorkflowID, "")
		switch {
		case err != nil:
			return "starting the DemoFleet workflow"
		case st.Phase != workflows.PhaseDone:
			return "building (DemoFleet " + st.Summary() + ")"
		}
		if st, err = api.QueryStatus(ctx, tc, workflows.FleetSyncWorkflowID, ""); err == nil && st.Phase != workflows.PhaseDone {
			return "built; reading it into the inventory (FleetSync " + st.Summary() + ")"
		}
		return "built; reading it into the inventory"
	}
}

// openConsoleHost waits for sandboxd's image (image is closed once it has one), makes the local
// sandboxd the console host of the demo fleet, and waits until the public status accepts
// consoles (when the public embed is on), so that the first console a user asks for opens.
func openConsoleHost(ctx context.Context, cp *controlPlane, startup *devstack.Startup, image <-chan struct{}, sandboxdURL, apiURL string, publicEmbed bool) error {
	var progress atomic.Value
	progress.Store("waiting for sandboxd's console image (built on the first run only: about a minute)")
	startup.Begin(stageConsoleHost, func(context.Context) string { return progress.Load().(string) })
	select {
	case <-image:
	case <-ctx.Done():
		return ctx.Err()
	}
	progress.Store("registering the local sandboxd at " + sandboxdURL)
	if err := registerDevConsoleHost(ctx, cp, sandboxdURL); err != nil {
		return err
	}
	if publicEmbed {
		progress.Store("waiting for " + apiURL + "/v1/status to accept consoles")
		for !acceptingConsoles(ctx, apiURL) {
			if !sleepCtx(ctx, 250*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	startup.Finish(stageConsoleHost)
	return nil
}

// acceptingConsoles asks the API's public status whether a new console would be accepted.
func acceptingConsoles(ctx context.Context, apiURL string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/v1/status", nil)
	if err != nil {
		return false
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st api.PublicStatus
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil && st.AcceptingConsoles
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// ensureDevImage gives the dev sandboxd's image store a default image: the console image
// (bash, python3), built with mmdebstrap on the first run and found in the store after that.
// A store that has a default already (an operator's choice) is left as it is.
func ensureDevImage(ctx context.Context, dir string, progress io.Writer) error {
	store, err := images.Open(dir)
	if err != nil {
		return err
	}
	if _, err := store.Default(); err == nil {
		return nil
	}
	fmt.Fprintf(progress, "Building the console image %s:%s (bash, python3) into %s: first run only, about a minute.\n",
		images.ConsoleImageName, images.ConsoleImageVersion(), dir)
	_, err = store.EnsureConsole(ctx, progress)
	return err
}

// registerDevConsoleHost makes the local sandboxd the console host of the demo fleet's first
// running console server, so consoles open on this machine. FleetSync keeps the URL. The
// sandboxd may still be starting: it is asked again until it answers or a minute is up.
func registerDevConsoleHost(ctx context.Context, cp *controlPlane, sandboxdURL string) error {
	servers, _, err := cp.store.ListServers(ctx, inventory.ServerFilter{Role: anyops.RoleConsole, State: anyops.ServerRunning})
	if err != nil {
		return err
	}
	if len(servers) == 0 {
		return errors.New("the inventory has no running console server")
	}
	srv := servers[0]
	srv.SandboxdURL = sandboxdURL
	for deadline := time.Now().Add(time.Minute); ; {
		_, err = activities.RegisterConsoleHost(ctx, cp.store, srv, cp.signer())
		if err == nil || anyops.ErrorCode(err) != anyops.EUNAVAILABLE || time.Now().After(deadline) {
			return err
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// devHomeFileSystem mounts the dev stack's homes: a btrfs file system in <data-dir>/homes.img
// (sparse, made on first use) at the storage root, so homes have their plans' quotas as on a
// console host. It needs mkfs.btrfs (Debian: btrfs-progs).
func devHomeFileSystem(dataDir, root string) (func() error, error) {
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil && !homes.IsBtrfs(root) {
		return nil, fmt.Errorf("mkfs.btrfs not found (apt-get install btrfs-progs): %w", err)
	}
	return homes.MountImage(filepath.Join(dataDir, "homes.img"), root, 8<<30)
}

// devAPIOrigins is the origin of the API at addr, the one the console page is served from,
// and its localhost spelling when addr is the loopback address.
func devAPIOrigins(addr string) string {
	origins := "http://" + addr
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "127.0.0.1" || host == "::1") {
		origins += ",http://localhost:" + port
	}
	return origins
}

// devSNSIdentity is the dev stack's SNS identity in <data-dir>/sns: made the first time, kept
// after that.
func devSNSIdentity(dataDir, snsAddr string) (cloudsim.SNSFiles, error) {
	hosts, err := cloudsim.SNSHosts(snsAddr)
	if err != nil {
		return cloudsim.SNSFiles{}, err
	}
	return cloudsim.EnsureSNSCertificates(filepath.Join(dataDir, "sns"), hosts)
}

// subscribeAPIToAlarms subscribes the API's SNS endpoint to cloudsim's alarm topic once the
// API serves (/healthz; it is ready later, with the demo fleet), as an operator subscribes an
// endpoint to a topic: cloudsim sends it the
// SubscriptionConfirmation and, once it is confirmed, the alarms. Subscribing again is
// harmless (a confirmed subscription is left as it is), so every start does it.
func subscribeAPIToAlarms(ctx context.Context, logger *slog.Logger, apiAddr, simAddr, topic string) {
	client := &http.Client{Timeout: 5 * time.Second}
	endpoint := "http://" + apiAddr + "/v1/alarms/sns"
	form := url.Values{"Action": {"Subscribe"}, "TopicArn": {topic}, "Protocol": {"http"}, "Endpoint": {endpoint}}
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
		if resp, err := client.Get("http://" + apiAddr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				sub, err := client.PostForm("http://"+simAddr+"/", form)
				if err == nil {
					sub.Body.Close()
					if sub.StatusCode == http.StatusOK {
						logger.Info("the API's SNS endpoint is subscribed to cloudsim's alarm topic", "endpoint", endpoint, "topic", topic)
						return
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	logger.Warn("could not subscribe the API to cloudsim's alarm topic: alarms will not reach it", "endpoint", endpoint)
}
