package network

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/anyops/anyops"
)

// The table is static: it is installed once and selects sandboxes' links by the policy letter
// in their names, so a sandbox's start and end touch no rule. Written as nft(8) would show it
// (P is the link prefix <name>-, U the uplink when configured):
//
//	table inet <name> {
//	  chain prerouting { type filter hook prerouting priority raw;
//	    iifname "P*" meta nfproto != ipv4 counter drop              # no IPv6 from sandboxes
//	    iifname "P*" fib saddr . iif oif missing counter drop      # spoofed source address
//	  }
//	  chain input { type filter hook input priority filter;
//	    iifname "P*" jump from_sandbox
//	  }
//	  chain from_sandbox {                                          # to the host itself
//	    ct state established,related accept                         # answers to the host
//	    iifname { "P-p-*", "P-t-*" } fib daddr . iif type local tcp dport 3128 accept
//	    iifname "P-i-*" fib daddr . iif type local udp dport 53 accept
//	    iifname "P-i-*" fib daddr . iif type local tcp dport 53 accept
//	    counter reject with icmpx admin-prohibited
//	  }
//	  chain forward { type filter hook forward priority filter;
//	    iifname "P*" jump through_host
//	    oifname "P*" ct state established,related accept
//	    oifname "P*" counter drop                                   # nobody starts a connection into a sandbox
//	  }
//	  chain through_host {                                          # from a sandbox to elsewhere
//	    iifname != "P-i-*" counter reject with icmpx admin-prohibited
//	    ip daddr <each blocked IPv4 range> counter reject with icmpx admin-prohibited
//	    [oifname != U counter reject with icmpx admin-prohibited]
//	    accept
//	  }
//	  chain postrouting { type nat hook postrouting priority srcnat;
//	    ip saddr <pool> oifname != "P*" masquerade
//	  }
//	}
//
// "fib daddr . iif type local" holds only for an address of the link the packet came in by: a
// sandbox reaches its own proxy or relay, not another sandbox's, nor any other address of the
// host.

const (
	chainFromSandbox = "from_sandbox"
	chainThroughHost = "through_host"
)

func (m *Manager) table() *nftables.Table {
	return &nftables.Table{Name: m.cfg.Name, Family: nftables.TableFamilyINet}
}

// deleteTable removes the table of the daemon named name if it exists.
func deleteTable(name string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network: nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("network: list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("network: delete nftables table %s: %w", t.Name, err)
			}
		}
	}
	return nil
}

// installTable adds the table above in one transaction: it is there whole or not at all.
func (m *Manager) installTable() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network: nftables: %w", err)
	}
	t := c.AddTable(m.table())
	base := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority, typ nftables.ChainType) *nftables.Chain {
		accept := nftables.ChainPolicyAccept
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Hooknum: hook, Priority: prio, Type: typ, Policy: &accept})
	}
	regular := func(name string) *nftables.Chain { return c.AddChain(&nftables.Chain{Name: name, Table: t}) }
	rule := func(ch *nftables.Chain, parts ...[]expr.Any) {
		var exprs []expr.Any
		for _, p := range parts {
			exprs = append(exprs, p...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	all := m.linkPrefix()
	proxied := []string{m.policyPrefix(anyops.NetworkProxy), m.policyPrefix(anyops.NetworkProxyThrottled)}
	internet := m.policyPrefix(anyops.NetworkInternet)

	pre := base("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityRaw, nftables.ChainTypeFilter)
	rule(pre, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, all), nfproto(expr.CmpOpNeq, unix.NFPROTO_IPV4), counted(drop()))
	rule(pre, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, all), noReversePath(), counted(drop()))

	fromSandbox := regular(chainFromSandbox)
	input := base("input", nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	rule(input, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, all), jump(chainFromSandbox))
	rule(fromSandbox, ctEstablished(), accept())
	for _, p := range proxied {
		rule(fromSandbox, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, p), toOwnLinkAddress(), port(unix.IPPROTO_TCP, ProxyPort), accept())
	}
	for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		rule(fromSandbox, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, internet), toOwnLinkAddress(), port(proto, DNSPort), accept())
	}
	rule(fromSandbox, counted(reject()))

	throughHost := regular(chainThroughHost)
	forward := base("forward", nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	rule(forward, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, all), jump(chainThroughHost))
	rule(forward, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, all), ctEstablished(), accept())
	rule(forward, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, all), counted(drop()))
	rule(throughHost, ifname(unix.NFT_META_IIFNAME, expr.CmpOpNeq, internet), counted(reject()))
	for _, p := range minimalPrefixes(m.blocked) {
		if p.Addr().Is4() {
			rule(throughHost, nfproto(expr.CmpOpEq, unix.NFPROTO_IPV4), ipv4In(16, p), counted(reject()))
		}
	}
	if m.cfg.Uplink != "" {
		rule(throughHost, exactIfname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, m.cfg.Uplink), counted(reject()))
	}
	rule(throughHost, accept())

	post := base("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, nftables.ChainTypeNAT)
	rule(post, nfproto(expr.CmpOpEq, unix.NFPROTO_IPV4), ipv4In(12, m.cfg.Pool), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, all), []expr.Any{&expr.Masq{}})

	if err := c.Flush(); err != nil {
		return fmt.Errorf("network: install nftables table %s: %w", m.cfg.Name, err)
	}
	return nil
}

// ifname compares the in- or out-interface's name with prefix: only its length is compared, so
// "x-" matches every name starting so (nft's "x-*").
func ifname(key expr.MetaKey, op expr.CmpOp, prefix string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: []byte(prefix)}}
}

// exactIfname compares the whole name, NUL-padded as the kernel keeps it.
func exactIfname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	data := make([]byte, unix.IFNAMSIZ)
	copy(data, name)
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: data}}
}

func nfproto(op expr.CmpOp, proto byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: []byte{proto}}}
}

// port matches a transport protocol and destination port.
func port(proto byte, p uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
	}
}

// ipv4In matches the IPv4 address at offset (12 source, 16 destination) inside p.
func ipv4In(offset uint32, p netip.Prefix) []expr.Any {
	m := make([]byte, 4)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	network := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: network[:]},
	}
}

// noReversePath holds when the packet's source address is not routed back through the
// interface it came in by ("fib saddr . iif oif missing").
func noReversePath() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagSADDR: true, FlagIIF: true, ResultOIF: true, FlagPRESENT: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}},
	}
}

// toOwnLinkAddress holds when the destination is an address of the interface the packet came
// in by ("fib daddr . iif type local").
func toOwnLinkAddress() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, FlagIIF: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func counted(verdict []expr.Any) []expr.Any { return append([]expr.Any{&expr.Counter{}}, verdict...) }
func accept() []expr.Any                    { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }
func drop() []expr.Any                      { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }
func jump(chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}

// reject answers with ICMP "administratively prohibited", so a program in the sandbox fails at
// once instead of waiting for a timeout.
func reject() []expr.Any {
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}
}

// minimalPrefixes drops the prefixes another one of the list contains, and duplicates.
func minimalPrefixes(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for i, p := range ps {
		covered := false
		for j, q := range ps {
			if i != j && q.Bits() <= p.Bits() && q.Contains(p.Addr()) && (q.Bits() < p.Bits() || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p.Masked())
		}
	}
	return out
}
