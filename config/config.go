// Package config is the one place where Anyops reads its settings: command-line flags, each
// with an ANYOPS_* environment fallback. Commands bind the sections they use, call Load after
// parsing, and Print the result at start with secrets masked.
package config

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/anyops/anyops/sandboxd/network"
)

// Common settings of every long-running command.
type Common struct {
	DataDir   string
	LogFormat string // text or json
	LogLevel  string // debug, info, warn, error
}

// DB selects the inventory database.
type DB struct {
	Driver string // sqlite or postgres
	DSN    string // for sqlite a file path; empty means <data dir>/anyops.db
}

// Temporal is how to reach the Temporal frontend.
type Temporal struct {
	Address   string
	Namespace string
}

// API configures `anyops api`.
type API struct {
	Addr string
	// Tokens maps bearer tokens to roles, given as "role:token" pairs separated by commas.
	Tokens string
	// PublicEmbed lets anonymous visitors create consoles (the python.org embed).
	PublicEmbed bool
	// CORSOrigins allowed on the public endpoints; "*" for any.
	CORSOrigins string
	// TemporalUIURL is the base URL of the Temporal Web UI the dashboard links operations to;
	// empty: no links (dev sets it to its --temporal-ui-addr).
	TemporalUIURL string
	// Alarms configures the alarm endpoints.
	Alarms Alarms
}

// Alarms configures the API's alarm endpoints: POST /v1/alarms/sns (CloudWatch alarms through
// an SNS HTTPS subscription) and POST /v1/alarms/alertmanager.
type Alarms struct {
	// SNSTopics are the topic ARNs whose messages are accepted, comma separated; none: every
	// SNS message is refused.
	SNSTopics string
	// SNSCertHosts are the hosts (host or host:port) SigningCertURL and SubscribeURL may name,
	// comma separated; empty: sns.<region>.amazonaws.com of each topic's region.
	SNSCertHosts string
	// SNSSigningCA is a PEM file of CA certificates trusted, besides the system's, for the
	// HTTPS fetch of signing certificates and subscription confirmations (cloudsim's in dev).
	SNSSigningCA string
	// SNSMaxAge is how far from now an SNS message's Timestamp may be.
	SNSMaxAge time.Duration
	// AlertmanagerToken is the bearer token Alertmanager sends (its own, not an API token);
	// empty switches the Alertmanager endpoint off.
	AlertmanagerToken string
}

// Client is how the command line reaches a running stack's API (anyops op, anyops incident).
type Client struct {
	Server  string // the API's base URL
	Token   string // a bearer token; empty: the admin token in the data dir
	DataDir string
}

// AdminTokenFile is the file in the data dir where `anyops dev` keeps its admin token, and
// where the command line looks for a token when none is given.
const AdminTokenFile = "admin-token"

// Certificates configures the rotation of the platform's own certificate (worker): its
// domain, and the ACME CA that issues it (none: the new key and CSR wait for a manual issue).
type Certificates struct {
	PlatformDomain string
	ACMEDirectory  string // the CA's directory URL
	ACMEEmail      string
	ACMECABundle   string // PEM file of CAs trusted for the directory besides the system's
}

// SMTP is where the notices outbox sends its mail (worker).
type SMTP struct {
	Addr     string // host:port of the submission server
	From     string
	Username string
	Password string
	StartTLS bool
}

// Signing holds the key the api and the workers sign sandboxd tokens with; sandboxd holds
// only its public half.
type Signing struct {
	SandboxdKey string // Ed25519 private key file (PEM), from `anyops sandboxd keygen`
	// RetiredSandboxdKeys are the keys signed with before a rotation, comma separated: the
	// console tokens derived from them stay valid; nothing is signed with them.
	RetiredSandboxdKeys string
}

// Worker configures `anyops worker`.
type Worker struct {
	MaxConcurrentActivities int
	// DeadlockTimeout is the workflow deadlock detection timeout; raised above the SDK's 1s
	// because loaded CI machines stall goroutines for longer than that.
	DeadlockTimeout time.Duration
	// MetricsAddr serves the worker's Prometheus /metrics; empty serves none.
	MetricsAddr string
	// The NFS probe of every file server (the NFSWatch workflows the fleet sync starts): a
	// round every NFSProbeInterval, a client's write given NFSProbeTimeout, the alarm after
	// NFSProbeFailures failed rounds in a row. In dev they are simulated time, scaled by
	// cloudsim's speed.
	NFSProbeInterval time.Duration
	NFSProbeTimeout  time.Duration
	NFSProbeFailures int
	// DrillCloudsim is the cloudsim whose control API (/_sim) drills drive: drills run only on
	// a simulated cloud (dev: its own cloudsim). DrillBaseSpeed is cloudsim's speed while no
	// drill runs (dev: cloudsim's --speed; 0: left as it is).
	DrillCloudsim  string
	DrillBaseSpeed float64
	// CommandPoll is how often a host command's result is asked of SSM. Against cloudsim it
	// shrinks with the speed (dev divides it by the speed itself): a poll of 2 s at speed 60
	// would add two simulated minutes to every command.
	CommandPoll time.Duration
}

// Sandboxd configures `anyops sandboxd`.
type Sandboxd struct {
	Addr string
	// URL is the base URL this sandboxd is registered under (PUT /v1/servers/{name}/sandboxd);
	// tokens name it as their audience. Empty: http://<addr> when addr names one address.
	URL          string
	PublicKey    string // Ed25519 public key file of the API
	PublicKeyDir string // more public keys, every *.pub in it, re-read when it changes (rotation)
	StorageRoot  string // per-user home directories live under it (the NFS mount in production)
	HomeQuota    string // btrfs (a subvolume and quota group per home) or none
	StateDir     string // sandbox roots and the record of sandboxes started
	ImageStore   string // the image store (anyops image build writes it); empty: <state dir>/images
	Slots        int    // how many sandboxes this host runs at most
	// AllowedOrigins are the Origins allowed to attach, comma separated: the API's own origin
	// (where the console page runs); empty allows no browser (dev: the API's origin).
	AllowedOrigins string
	// CgroupParent holds one cgroup per sandbox. A sandboxd removes everything under it at
	// start, so two daemons on one host need different parents.
	CgroupParent string
	// The sandboxes' network (package sandboxd/network, docs/sandboxd.md "Network").
	NetworkPool    string // IPv4 range the sandboxes' /30s come from
	PrivateRanges  string // ranges no sandbox reaches, comma separated
	ProxyAllowlist string // hosts free consoles reach through the proxy, comma separated; "*.d" for every name under d
	Uplink         string // the only interface internet traffic may leave by; empty: any
	DNS            string // resolvers of the proxy and the DNS relay, comma separated; empty: /etc/resolv.conf's
	TarpitRate     int64  // bytes per second each way of a tarpit console's link
}

// Cloudsim configures `anyops cloudsim`.
type Cloudsim struct {
	Addr  string
	State string  // state file; empty keeps state in memory only
	Speed float64 // simulated seconds per real second
	// SNS and the status-check alarms (docs/cloudsim.md, "CloudWatch and SNS").
	SNSAddr             string // HTTPS listener: SigningCertURL, SubscribeURL
	SNSCert             string // PEM signing certificate (also the listener's); empty: SNS off
	SNSKey              string // its RSA key
	SNSTopicARN         string
	SNSEndpoint         string // subscribed at start
	SNSSignatureVersion int
	SNSDuplicates       int
	AlarmPeriod         time.Duration
	AlarmEvaluations    int
	AlarmDatapoints     int
}

// AWS is how activities reach the cloud (cloudsim in dev and tests).
type AWS struct {
	Region          string
	Endpoint        string // empty for real AWS
	AccessKeyID     string
	SecretAccessKey string
}

// Binder registers flags on a FlagSet and remembers each flag's environment variable and
// whether it is a secret.
type Binder struct {
	fs      *pflag.FlagSet
	envs    map[string]string // flag name -> environment variable
	secrets map[string]bool
}

// NewBinder returns a Binder for fs.
func NewBinder(fs *pflag.FlagSet) *Binder {
	return &Binder{fs: fs, envs: map[string]string{}, secrets: map[string]bool{}}
}

// EnvName is the environment fallback of a flag: ANYOPS_ followed by the flag name in upper
// snake case (--temporal-addr → ANYOPS_TEMPORAL_ADDR).
func EnvName(flag string) string {
	return "ANYOPS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func (b *Binder) register(name, env string, secret bool) {
	if env == "" {
		env = EnvName(name)
	}
	b.envs[name] = env
	b.secrets[name] = secret
}

// String binds a string flag. env overrides the default environment name when not empty.
func (b *Binder) String(p *string, name, env, def, usage string) {
	b.fs.StringVar(p, name, def, usage+" ["+envOr(env, name)+"]")
	b.register(name, env, false)
}

// Secret binds a string flag whose value is masked when printed.
func (b *Binder) Secret(p *string, name, env, def, usage string) {
	b.fs.StringVar(p, name, def, usage+" ["+envOr(env, name)+"]")
	b.register(name, env, true)
}

// Bool binds a bool flag.
func (b *Binder) Bool(p *bool, name, env string, def bool, usage string) {
	b.fs.BoolVar(p, name, def, usage+" ["+envOr(env, name)+"]")
	b.register(name, env, false)
}

// Int binds an int flag.
func (b *Binder) Int(p *int, name, env string, def int, usage string) {
	b.fs.IntVar(p, name, def, usage+" ["+envOr(env, name)+"]")
	b.register(name, env, false)
}

// Int64 binds an int64 flag.
func (b *Binder) Int64(p *int64, name, env string, def int64, usage string) {
	b.fs.Int64Var(p, name, def, usage+" ["+envOr(env, name)+"]")
	b.register(name, env, false)
}

// Float binds a float64 flag.
func (b *Binder) Float(p *float64, name, env string, def float64, usage string) {
	b.fs.Float64Var(p, name, def, usage+" ["+envOr(env, name)+"]")
	b.register(name, env, false)
}

// Duration binds a duration flag.
func (b *Binder) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	b.fs.DurationVar(p, name, def, usage+" ["+envOr(env, name)+"]")
	b.register(name, env, false)
}

func envOr(env, name string) string {
	if env != "" {
		return env
	}
	return EnvName(name)
}

// Load applies the environment fallbacks to every flag not given on the command line. Call it
// after the FlagSet is parsed. An environment value that does not parse is an error naming
// the variable.
func (b *Binder) Load() error {
	var err error
	b.fs.VisitAll(func(f *pflag.Flag) {
		env, ok := b.envs[f.Name]
		if !ok || f.Changed || err != nil {
			return
		}
		if v, set := os.LookupEnv(env); set {
			if e := b.fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return err
}

// EnvNames lists the environment variables of every bound flag.
func (b *Binder) EnvNames() []string {
	names := make([]string, 0, len(b.envs))
	for _, env := range b.envs {
		names = append(names, env)
	}
	sort.Strings(names)
	return names
}

// Print writes every bound setting, one per line and sorted, with secrets masked.
func (b *Binder) Print(w io.Writer) {
	var names []string
	for name := range b.envs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := b.fs.Lookup(name)
		if f == nil {
			continue
		}
		v := f.Value.String()
		if b.secrets[name] {
			v = Mask(v)
		}
		fmt.Fprintf(w, "  %-28s %s\n", "--"+name, v)
	}
}

// Mask hides a secret, keeping only whether it is set.
func Mask(v string) string {
	if v == "" {
		return ""
	}
	return "********"
}

// BindCommon binds the settings every long-running command shares.
func (b *Binder) BindCommon(c *Common) {
	b.String(&c.DataDir, "data-dir", "", ".anyops", "directory for state: SQLite database, keys, Temporal's database")
	b.String(&c.LogFormat, "log-format", "", "text", "log format: text or json")
	b.String(&c.LogLevel, "log-level", "", "info", "log level: debug, info, warn, error")
}

// BindDB binds the inventory database settings.
func (b *Binder) BindDB(c *DB) {
	b.String(&c.Driver, "db-driver", "", "sqlite", "inventory database: sqlite or postgres")
	b.Secret(&c.DSN, "db-dsn", "", "", "database DSN (postgres) or file (sqlite); empty: <data-dir>/anyops.db")
}

// BindTemporal binds how to reach Temporal.
func (b *Binder) BindTemporal(c *Temporal) {
	b.String(&c.Address, "temporal-addr", "", "127.0.0.1:7233", "Temporal frontend host:port")
	b.String(&c.Namespace, "temporal-namespace", "", "default", "Temporal namespace")
}

// BindAWS binds the cloud client settings.
func (b *Binder) BindAWS(c *AWS) {
	b.String(&c.Region, "aws-region", "", "us-east-1", "AWS region")
	b.String(&c.Endpoint, "aws-endpoint", "", "", "AWS endpoint URL (cloudsim in dev); empty for AWS itself")
	b.Secret(&c.AccessKeyID, "aws-access-key-id", "", "", "AWS access key id; empty uses the SDK's default chain")
	b.Secret(&c.SecretAccessKey, "aws-secret-access-key", "", "", "AWS secret access key")
}

// BindAPI binds the API server settings.
func (b *Binder) BindAPI(c *API) {
	b.String(&c.Addr, "api-addr", "", "127.0.0.1:8080", "API listen address")
	b.Secret(&c.Tokens, "tokens", "", "", `bearer tokens as "role:token,..." with role viewer, operator or admin`)
	b.Bool(&c.PublicEmbed, "public-embed", "", false, "let anonymous visitors create consoles")
	b.String(&c.CORSOrigins, "cors-origins", "", "*", "origins allowed on public endpoints, comma separated")
	b.String(&c.TemporalUIURL, "temporal-ui-url", "", "", "base URL of the Temporal Web UI the dashboard links to (dev: http://<temporal-ui-addr>)")
	b.BindAlarms(&c.Alarms)
}

// BindAlarms binds the settings of the API's alarm endpoints.
func (b *Binder) BindAlarms(c *Alarms) {
	b.String(&c.SNSTopics, "sns-topics", "", "", "SNS topic ARNs whose messages POST /v1/alarms/sns accepts, comma separated")
	b.String(&c.SNSCertHosts, "sns-cert-hosts", "", "", "hosts SNS signing certificates and SubscribeURLs may be on, comma separated; empty: sns.<region>.amazonaws.com of each topic")
	b.String(&c.SNSSigningCA, "sns-signing-ca", "", "", "PEM file of CAs trusted besides the system's for fetching SNS signing certificates (dev: cloudsim's)")
	b.Duration(&c.SNSMaxAge, "sns-max-age", "", time.Hour, "how far from now an SNS message's Timestamp may be")
	b.Secret(&c.AlertmanagerToken, "alertmanager-token", "", "", "bearer token of POST /v1/alarms/alertmanager (Alertmanager's own); empty: the endpoint is off")
}

// BindClient binds how the command line reaches the API.
func (b *Binder) BindClient(c *Client) {
	b.String(&c.Server, "server", "", "http://127.0.0.1:8080", "the API's base URL (a running `anyops dev` answers here)")
	b.Secret(&c.Token, "token", "", "", "bearer token; empty: the admin token of the dev stack in --data-dir")
	b.String(&c.DataDir, "data-dir", "", ".anyops", "the dev stack's data directory, where its admin token is")
}

// BindCertificates binds the platform certificate's rotation settings.
func (b *Binder) BindCertificates(c *Certificates) {
	b.String(&c.PlatformDomain, "platform-domain", "", "", "the platform's own domain, the name on its certificate (e.g. www.anyops.example)")
	b.String(&c.ACMEDirectory, "acme-directory", "", "", "ACME CA directory URL the platform's certificate is issued through; empty: a rotation leaves a CSR to issue by hand")
	b.String(&c.ACMEEmail, "acme-email", "", "", "contact email of the ACME account")
	b.String(&c.ACMECABundle, "acme-ca-bundle", "", "", "PEM file of CAs trusted for the ACME directory besides the system's (a test CA)")
}

// BindSMTP binds where the notices are sent.
func (b *Binder) BindSMTP(c *SMTP) {
	b.String(&c.Addr, "smtp-addr", "", "", "SMTP submission server host:port for owner notices; empty: notices stay in the outbox")
	b.String(&c.From, "smtp-from", "", "", "sender address of owner notices")
	b.String(&c.Username, "smtp-username", "", "", "SMTP user (PLAIN auth); empty: no auth")
	b.Secret(&c.Password, "smtp-password", "", "", "SMTP password")
	b.Bool(&c.StartTLS, "smtp-starttls", "", false, "use STARTTLS before authenticating")
}

// BindWorkerMetrics binds where `anyops worker` serves /metrics (dev serves the worker's
// metrics on the API's /metrics instead).
func (b *Binder) BindWorkerMetrics(c *Worker) {
	b.String(&c.MetricsAddr, "metrics-addr", "", "127.0.0.1:9464", "listen address of the worker's Prometheus /metrics; empty: none")
}

// BindSigning binds the sandboxd signing key, shared by api and worker.
func (b *Binder) BindSigning(c *Signing) {
	b.String(&c.SandboxdKey, "sandboxd-key", "", "", "Ed25519 private key file that signs sandboxd tokens; consoles are off without it")
	b.String(&c.RetiredSandboxdKeys, "sandboxd-retired-keys", "", "", "key files signed with before a rotation, comma separated: open consoles' tokens stay valid")
}

// BindWorker binds the worker settings.
func (b *Binder) BindWorker(c *Worker) {
	b.Int(&c.MaxConcurrentActivities, "max-concurrent-activities", "", 200, "activities one worker runs at once")
	b.Duration(&c.DeadlockTimeout, "deadlock-timeout", "", 10*time.Second, "workflow deadlock detection timeout")
	b.Duration(&c.NFSProbeInterval, "nfs-probe-interval", "", 10*time.Second, "how often each file server's NFS watch probes it (dev: simulated time)")
	b.Duration(&c.NFSProbeTimeout, "nfs-probe-timeout", "", 5*time.Second, "how long a client's write to its NFS mount may take before it counts as hung (dev: simulated time)")
	b.Int(&c.NFSProbeFailures, "nfs-probe-failures", "", 3, "failed probe rounds in a row that raise the probe alarm")
	b.String(&c.DrillCloudsim, "drill-cloudsim", "ANYOPS_DRILL_CLOUDSIM", "", "base URL of the cloudsim drills drive (its /_sim control API); empty: drills cannot run (dev: its own cloudsim)")
	b.Float(&c.DrillBaseSpeed, "drill-base-speed", "ANYOPS_DRILL_BASE_SPEED", 0, "cloudsim's speed while no drill runs; 0: left as it is (dev: cloudsim's --speed)")
	b.Duration(&c.CommandPoll, "command-poll", "ANYOPS_COMMAND_POLL", 2*time.Second, "how often a running host command's result is asked of SSM (dev: divided by cloudsim's speed)")
}

// BindSandboxd binds the sandboxd settings. prefix is "" for `anyops sandboxd` (--addr) and
// "sandboxd-" inside `anyops dev` (--sandboxd-addr).
func (b *Binder) BindSandboxd(c *Sandboxd, prefix string) {
	b.String(&c.Addr, prefix+"addr", "ANYOPS_SANDBOXD_ADDR", "127.0.0.1:8090", "sandboxd listen address")
	if prefix == "" {
		b.String(&c.URL, "url", "ANYOPS_SANDBOXD_URL", "", "the base URL this sandboxd is registered under, which its tokens must name; empty: http://<addr>")
		b.String(&c.PublicKey, "public-key", "ANYOPS_SANDBOXD_PUBLIC_KEY", "", "Ed25519 public key file of the API")
		b.String(&c.PublicKeyDir, "public-key-dir", "ANYOPS_SANDBOXD_PUBLIC_KEY_DIR", "", "directory of more public keys (*.pub), re-read when it changes: for key rotation")
	}
	b.String(&c.StorageRoot, prefix+"storage-root", "ANYOPS_SANDBOXD_STORAGE_ROOT", "", "per-user homes live under it (production: the file service's NFS export); empty: <data-dir>/homes")
	b.String(&c.HomeQuota, prefix+"home-quota", "ANYOPS_SANDBOXD_HOME_QUOTA", "btrfs", "how homes get their plan's quota: btrfs (the storage root is a btrfs file system) or none (an NFS export whose file server enforces it)")
	b.String(&c.StateDir, prefix+"state-dir", "ANYOPS_SANDBOXD_STATE_DIR", "", "sandbox roots and records; empty: <data-dir>/sandboxd")
	b.String(&c.ImageStore, prefix+"image-store", ImageStoreEnv, "", "image store (anyops image build NAME:VERSION); empty: <state-dir>/images")
	b.Int(&c.Slots, prefix+"slots", "ANYOPS_SANDBOXD_SLOTS", 64, "sandboxes this host runs at most")
	b.String(&c.AllowedOrigins, prefix+"allowed-origins", "ANYOPS_SANDBOXD_ALLOWED_ORIGINS", "", "Origins allowed to attach, comma separated: the API's own (https://anyops.example); empty: no browser (dev: the API's)")
	b.String(&c.CgroupParent, prefix+"cgroup-parent", "ANYOPS_SANDBOXD_CGROUP_PARENT", "", `cgroup holding the sandboxes' cgroups; empty: "anyops" (dev: one per data dir)`)
	b.String(&c.NetworkPool, prefix+"network-pool", "ANYOPS_SANDBOXD_NETWORK_POOL", network.DefaultPool.String(), "IPv4 range the sandboxes' links are numbered from, a /30 each")
	b.String(&c.PrivateRanges, prefix+"private-ranges", "ANYOPS_SANDBOXD_PRIVATE_RANGES", joinPrefixes(network.DefaultPrivateRanges), "address ranges no sandbox reaches, comma separated (the metadata service, loopback and the pool always)")
	b.String(&c.ProxyAllowlist, prefix+"proxy-allowlist", "ANYOPS_SANDBOXD_PROXY_ALLOWLIST", strings.Join(network.DefaultAllowlist, ","), `hosts free and tarpit consoles reach through the proxy, comma separated; "*.example.org" for every name under it`)
	b.String(&c.Uplink, prefix+"uplink", "ANYOPS_SANDBOXD_UPLINK", "", "the only interface paid consoles' traffic may leave by; empty: any but the sandboxes'")
	b.String(&c.DNS, prefix+"dns", "ANYOPS_SANDBOXD_DNS", "", "resolvers (ip or ip:port, comma separated) of the proxy and the DNS relay; empty: the host's /etc/resolv.conf")
	b.Int64(&c.TarpitRate, prefix+"tarpit-rate", "ANYOPS_SANDBOXD_TARPIT_RATE", network.DefaultThrottle, "bytes per second, each way, of a tarpit console's network")
}

// NetworkConfig parses the network settings into the sandboxes' network configuration (its
// Name comes from the cgroup parent, and its logger from the daemon).
func (c Sandboxd) NetworkConfig() (network.Config, error) {
	var nc network.Config
	var err error
	if nc.Pool, err = netip.ParsePrefix(strings.TrimSpace(c.NetworkPool)); err != nil {
		return nc, fmt.Errorf("network pool %q: %w", c.NetworkPool, err)
	}
	nc.PrivateRanges = []netip.Prefix{}
	for _, s := range splitList(c.PrivateRanges) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nc, fmt.Errorf("private ranges: %q: %w", s, err)
		}
		nc.PrivateRanges = append(nc.PrivateRanges, p)
	}
	nc.Allowlist = splitList(c.ProxyAllowlist)
	for _, s := range splitList(c.DNS) {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nc, fmt.Errorf("dns: %q is neither ip nor ip:port", s)
			}
			ap = netip.AddrPortFrom(a, network.DNSPort)
		}
		nc.DNS = append(nc.DNS, ap)
	}
	nc.Uplink = strings.TrimSpace(c.Uplink)
	nc.ThrottleBytesPerSecond = c.TarpitRate
	return nc, nil
}

func splitList(s string) []string {
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// ImageStoreEnv names the image store for sandboxd and for `anyops image` alike, so one
// setting in a console host's environment makes both use the same directory.
const ImageStoreEnv = "ANYOPS_SANDBOXD_IMAGE_STORE"

// Image configures `anyops image`: where its store is and where packages come from.
type Image struct {
	Store   string // the image store; empty: <data-dir>/sandboxd/images, sandboxd's default
	Suite   string // Debian suite
	Mirrors string // apt sources, comma separated: archive URLs or "deb URL SUITE COMPONENT..." lines
}

// BindImage binds the `anyops image` settings.
func (b *Binder) BindImage(c *Image) {
	b.String(&c.Store, "store", ImageStoreEnv, "", "image store; empty: <data-dir>/sandboxd/images (sandboxd's default)")
	b.String(&c.Suite, "suite", "ANYOPS_IMAGE_SUITE", "", "Debian suite images are built from; empty: bookworm")
	b.String(&c.Mirrors, "mirrors", "ANYOPS_IMAGE_MIRRORS", "", "apt sources, comma separated: archive URLs or \"deb URL SUITE COMPONENT...\" lines; empty: deb.debian.org (release, updates, security)")
}

// BindCloudsim binds the cloudsim settings, with the same prefix rule as BindSandboxd.
func (b *Binder) BindCloudsim(c *Cloudsim, prefix string) {
	b.String(&c.Addr, prefix+"addr", "ANYOPS_CLOUDSIM_ADDR", "127.0.0.1:4566", "cloudsim listen address")
	if prefix == "" {
		b.String(&c.State, "state", "ANYOPS_SIM_STATE", "", "state file; empty keeps state in memory")
	}
	b.Float(&c.Speed, prefix+"speed", "ANYOPS_SIM_SPEED", 60, "simulated seconds per real second")
	b.String(&c.SNSAddr, prefix+"sns-addr", "ANYOPS_SIM_SNS_ADDR", "127.0.0.1:4567", "HTTPS listener of cloudsim's SNS (SigningCertURL, SubscribeURL)")
	if prefix == "" {
		// anyops dev makes its own: a CA and a certificate in <data-dir>/sns.
		b.String(&c.SNSCert, "sns-cert", "ANYOPS_SIM_SNS_CERT", "", "PEM certificate SNS messages are signed with, served at SigningCertURL; empty: SNS off")
		b.String(&c.SNSKey, "sns-key", "ANYOPS_SIM_SNS_KEY", "", "PEM RSA private key of --sns-cert")
		b.String(&c.SNSEndpoint, "sns-endpoint", "ANYOPS_SIM_SNS_ENDPOINT", "", "HTTP(S) endpoint subscribed to the topic at start (the API's /v1/alarms/sns)")
	}
	b.String(&c.SNSTopicARN, prefix+"sns-topic-arn", "ANYOPS_SIM_SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:anyops-alarms", "SNS topic the status-check alarms publish to")
	b.Int(&c.SNSSignatureVersion, prefix+"sns-signature-version", "ANYOPS_SIM_SNS_SIGNATURE_VERSION", 1, "SNS SignatureVersion: 1 (SHA1withRSA) or 2 (SHA256withRSA)")
	b.Int(&c.SNSDuplicates, prefix+"sns-duplicates", "ANYOPS_SIM_SNS_DUPLICATES", 0, "deliver every SNS notification this many extra times (SNS is at-least-once)")
	b.Duration(&c.AlarmPeriod, prefix+"alarm-period", "ANYOPS_SIM_ALARM_PERIOD", time.Minute, "period of the status-check alarms")
	b.Int(&c.AlarmEvaluations, prefix+"alarm-evaluation-periods", "ANYOPS_SIM_ALARM_EVALUATION_PERIODS", 2, "periods a status-check alarm evaluates")
	b.Int(&c.AlarmDatapoints, prefix+"alarm-datapoints", "ANYOPS_SIM_ALARM_DATAPOINTS", 2, "breaching datapoints among them that raise the alarm")
}

// SplitList splits a comma-separated setting (--cors-origins, --sns-topics, ...), dropping
// blanks around and between its items.
func SplitList(spec string) []string {
	var out []string
	for _, item := range strings.Split(spec, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// DefaultPath returns p when set, else name under the data dir.
func (c Common) DefaultPath(p, name string) string {
	if p != "" {
		return p
	}
	return filepath.Join(c.DataDir, name)
}

// NewLogger builds the slog logger every command uses: text or JSON on w at --log-level.
func (c Common) NewLogger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.LogFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
}
