package activities

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// DRBDNode is one side of a DRBD resource.
type DRBDNode struct {
	// Hostname is the host's name as `uname -n` says it: DRBD picks its own on section by it.
	Hostname string
	Address  string // the IPv4 address DRBD listens on
	NodeID   int
	// Disk is the backing device on that host; on Nitro its stable by-id link
	// (VolumeDevice.StablePath), since NVMe names can change at a reboot.
	Disk string
}

// DRBDResourceConfig is a resource file's content: one volume replicated between two or more
// hosts (DRBD 9: a full mesh; a third node while a new backup is seeded) with internal
// metadata.
type DRBDResourceConfig struct {
	Name  string // e.g. live-r0
	Minor int    // the device is /dev/drbd<Minor>
	Port  int    // TCP port on both hosts
	Nodes []DRBDNode
}

// DRBDConfigDir is where resource files go; /etc/drbd.conf includes drbd.d/*.res.
const DRBDConfigDir = "/etc/drbd.d"

var reHostname = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func (c DRBDResourceConfig) check() error {
	if err := checkField("Resource", c.Name, reName); err != nil {
		return err
	}
	if len(c.Name) > 63 {
		return invalidInput("Resource %q is longer than 63 characters", c.Name)
	}
	if c.Minor < 0 || c.Minor > 1048575 {
		return invalidInput("Minor %d is out of range", c.Minor)
	}
	if c.Port < 1 || c.Port > 65535 {
		return invalidInput("Port %d is out of range", c.Port)
	}
	if len(c.Nodes) < 2 || len(c.Nodes) > 32 {
		return invalidInput("a resource has 2 to 32 nodes, not %d", len(c.Nodes))
	}
	for i, a := range c.Nodes {
		for _, b := range c.Nodes[i+1:] {
			if a.Hostname == b.Hostname || a.NodeID == b.NodeID || a.Address == b.Address {
				return invalidInput("the nodes of %s need distinct hostnames, node ids and addresses", c.Name)
			}
		}
	}
	for _, n := range c.Nodes {
		if len(n.Hostname) > 253 || !reHostname.MatchString(n.Hostname) {
			return invalidInput("Hostname %q is not valid", n.Hostname)
		}
		if ip, err := netip.ParseAddr(n.Address); err != nil || !ip.Is4() {
			return invalidInput("Address %q is not an IPv4 address", n.Address)
		}
		if n.NodeID < 0 || n.NodeID > 31 {
			return invalidInput("NodeID %d is out of range", n.NodeID)
		}
		if err := checkField("Disk", n.Disk, reDevice); err != nil {
			return err
		}
	}
	return nil
}

// File is the path of the resource file.
func (c DRBDResourceConfig) File() string { return DRBDConfigDir + "/" + c.Name + ".res" }

// Render is the resource file in DRBD 9's syntax (drbd.conf(5)), the same on every host.
func (c DRBDResourceConfig) Render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by anyops; changes are overwritten.\nresource %s {\n  device /dev/drbd%d;\n  meta-disk internal;\n", c.Name, c.Minor)
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "  on %s {\n    node-id %d;\n    address %s:%d;\n    disk %s;\n  }\n", n.Hostname, n.NodeID, n.Address, c.Port, n.Disk)
	}
	hosts := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		hosts[i] = n.Hostname
	}
	fmt.Fprintf(&b, "  connection-mesh {\n    hosts %s;\n  }\n}\n", strings.Join(hosts, " "))
	return b.String()
}

// ConfigureDRBDInput writes a resource file on one of its two hosts.
type ConfigureDRBDInput struct {
	InstanceID string
	Resource   DRBDResourceConfig
}

// ConfigureDRBDOutput says what ConfigureDRBD changed.
type ConfigureDRBDOutput struct {
	File    string
	Changed bool // the file's content changed (false: it was already this)
	// Adjusted: the resource was up, and drbdadm adjust applied the file to it.
	Adjusted bool
	Result   CommandResult
}

// ConfigureDRBD writes the resource file through SSM with plain commands: the content goes to
// a new file with printf, cmp tells whether it differs, mv puts it in place at once (a crash
// never leaves half a file), and — when the resource is up — drbdadm adjust applies it. The
// same content again is no change; adjust runs then too, because an attempt that died between
// mv and adjust must not leave the change unapplied, and adjust with an unchanged file does
// nothing. The host must be one of the resource's nodes (a non-retryable InvalidInput
// otherwise: the file would configure nothing there).
func (h *Hosts) ConfigureDRBD(ctx context.Context, in ConfigureDRBDInput) (ConfigureDRBDOutput, error) {
	c := in.Resource
	if err := c.check(); err != nil {
		return ConfigureDRBDOutput{}, err
	}
	file, next := shellQuote(c.File()), shellQuote(c.File()+".anyops-new")
	write := "printf '%s\\n'"
	for _, line := range strings.Split(strings.TrimSuffix(c.Render(), "\n"), "\n") {
		write += " " + shellQuote(line)
	}
	var isNode, names []string
	for _, n := range c.Nodes {
		isNode = append(isNode, "hostname | grep -q -x -F "+shellQuote(n.Hostname))
		names = append(names, n.Hostname)
	}
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops configure drbd " + c.Name, Commands: []string{
		strings.Join(isNode, " || ") + " || exit " + strconv.Itoa(exitWrongHost),
		write + " > " + next,
		"cmp -s " + next + " " + file + " || echo anyops-changed",
		"mv " + next + " " + file,
		"drbdadm status " + shellQuote(c.Name) + " >/dev/null 2>&1 || exit 0",
		"drbdadm adjust " + shellQuote(c.Name) + " && echo anyops-adjusted",
	}})
	if err != nil {
		return ConfigureDRBDOutput{}, err
	}
	if res.ExitCode == exitWrongHost {
		return ConfigureDRBDOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s is none of %s: resource %s does not configure it", in.InstanceID, strings.Join(names, ", "), c.Name),
			ErrInvalidInput, nil, res)
	}
	if err := commandError(res); err != nil {
		return ConfigureDRBDOutput{}, err
	}
	changed := strings.Contains(res.Stdout, "anyops-changed")
	return ConfigureDRBDOutput{File: c.File(), Changed: changed, Adjusted: changed && strings.Contains(res.Stdout, "anyops-adjusted"), Result: res}, nil
}

const exitWrongHost = 69

// ReadDRBDConfig reads a resource's file on a host, as ConfigureDRBD wrote it: the nodes with
// their node ids, addresses and disks. A recovery that replaces one side of a pair rewrites the
// file with the other side as it is. A file that is missing, or not in ConfigureDRBD's form, is
// a non-retryable UnexpectedOutput.
func (h *Hosts) ReadDRBDConfig(ctx context.Context, in DRBDResourceInput) (DRBDResourceConfig, error) {
	if err := in.check(); err != nil {
		return DRBDResourceConfig{}, err
	}
	file := DRBDConfigDir + "/" + in.Resource + ".res"
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops read drbd config " + in.Resource, Commands: []string{"cat " + shellQuote(file)}})
	if err != nil {
		return DRBDResourceConfig{}, err
	}
	conf, err := ParseDRBDConfig(in.Resource, res.Stdout)
	if err != nil {
		return DRBDResourceConfig{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on %s: %v", file, in.InstanceID, err), ErrUnexpectedOutput, nil, res)
	}
	return conf, nil
}

var (
	reConfDevice = regexp.MustCompile(`^device /dev/drbd([0-9]+);$`)
	reConfOn     = regexp.MustCompile(`^on (\S+) \{$`)
	reConfNodeID = regexp.MustCompile(`^node-id ([0-9]+);$`)
	reConfAddr   = regexp.MustCompile(`^address ([0-9.]+):([0-9]+);$`)
	reConfDisk   = regexp.MustCompile(`^disk (\S+);$`)
)

// ParseDRBDConfig reads a resource file in the form DRBDResourceConfig.Render writes; Render of
// the result gives the same file back.
func ParseDRBDConfig(name, text string) (DRBDResourceConfig, error) {
	c := DRBDResourceConfig{Name: name, Minor: -1}
	var node *DRBDNode
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if m := reConfDevice.FindStringSubmatch(line); m != nil {
			c.Minor, _ = strconv.Atoi(m[1])
		} else if m := reConfOn.FindStringSubmatch(line); m != nil {
			c.Nodes = append(c.Nodes, DRBDNode{Hostname: m[1], NodeID: -1})
			node = &c.Nodes[len(c.Nodes)-1]
		} else if node == nil {
			continue
		} else if m := reConfNodeID.FindStringSubmatch(line); m != nil {
			node.NodeID, _ = strconv.Atoi(m[1])
		} else if m := reConfAddr.FindStringSubmatch(line); m != nil {
			node.Address = m[1]
			c.Port, _ = strconv.Atoi(m[2])
		} else if m := reConfDisk.FindStringSubmatch(line); m != nil {
			node.Disk = m[1]
		} else if line == "}" {
			node = nil
		}
	}
	if err := c.check(); err != nil {
		return DRBDResourceConfig{}, err
	}
	if c.Render() != strings.TrimRight(text, "\n")+"\n" {
		return DRBDResourceConfig{}, fmt.Errorf("not a resource file anyops wrote")
	}
	return c, nil
}
