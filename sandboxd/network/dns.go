package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The DNS relay of an internet sandbox, on the host's end of its link: the sandbox cannot reach
// the host's resolvers itself (they are on the host, or at private addresses), so the relay
// passes its queries on, unread, over UDP and TCP, and the answers back.

const (
	dnsTimeout       = 3 * time.Second  // per upstream, per UDP query
	dnsTCPTimeout    = 30 * time.Second // per TCP connection
	maxDNSInFlight   = 32               // UDP queries of one sandbox at once; more are dropped
	maxDNSTCPConns   = 8
	maxDNSPacketSize = 65535
)

type dnsRelay struct {
	udp      *net.UDPConn
	tcp      net.Listener
	upstream []netip.AddrPort
	log      *slog.Logger
	udpSlots chan struct{}
	tcpSlots chan struct{}
	closing  chan struct{}
	wg       sync.WaitGroup // the two serving loops
}

func startDNSRelay(addr netip.AddrPort, upstream []netip.AddrPort, log *slog.Logger) (*dnsRelay, error) {
	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("network: DNS relay: %w", err)
	}
	tcp, err := net.Listen("tcp", addr.String())
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("network: DNS relay: %w", err)
	}
	d := &dnsRelay{udp: udp, tcp: tcp, upstream: upstream, log: log,
		udpSlots: make(chan struct{}, maxDNSInFlight), tcpSlots: make(chan struct{}, maxDNSTCPConns), closing: make(chan struct{})}
	d.wg.Add(2)
	go d.serveUDP()
	go d.serveTCP()
	return d, nil
}

func (d *dnsRelay) serveUDP() {
	defer d.wg.Done()
	buf := make([]byte, maxDNSPacketSize)
	for {
		n, from, err := d.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case d.udpSlots <- struct{}{}:
		default:
			continue // the client retries; a sandbox does not get unbounded goroutines
		}
		query := append([]byte(nil), buf[:n]...)
		go func() { // ends within dnsTimeout per upstream, also after Close
			defer func() { <-d.udpSlots }()
			if answer := d.askUDP(query); answer != nil {
				_, _ = d.udp.WriteToUDPAddrPort(answer, from)
			}
		}()
	}
}

// askUDP tries each upstream in turn until one answers.
func (d *dnsRelay) askUDP(query []byte) []byte {
	buf := make([]byte, maxDNSPacketSize)
	for _, up := range d.upstream {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(up))
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(dnsTimeout))
		_, err = c.Write(query)
		var n int
		if err == nil {
			n, err = c.Read(buf)
		}
		c.Close()
		if err == nil {
			return buf[:n]
		}
	}
	return nil
}

func (d *dnsRelay) serveTCP() {
	defer d.wg.Done()
	for {
		c, err := d.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case d.tcpSlots <- struct{}{}:
		default:
			c.Close()
			continue
		}
		go func() {
			defer func() { <-d.tcpSlots }()
			d.relayTCP(c)
		}()
	}
}

func (d *dnsRelay) relayTCP(client net.Conn) {
	defer client.Close()
	deadline := time.Now().Add(dnsTCPTimeout)
	for _, up := range d.upstream {
		server, err := net.DialTimeout("tcp", up.String(), dnsTimeout)
		if err != nil {
			continue
		}
		_ = client.SetDeadline(deadline)
		_ = server.SetDeadline(deadline)
		done := make(chan struct{})
		go func() { // a closing relay ends its connections at once
			select {
			case <-d.closing:
				client.Close()
				server.Close()
			case <-done:
			}
		}()
		pipe(client, server)
		close(done)
		server.Close()
		return
	}
	d.log.Debug("DNS relay: no upstream reachable over TCP")
}

// Close stops the relay and ends its TCP connections; a UDP query in flight ends on its own
// timeout, its answer going nowhere.
func (d *dnsRelay) Close() error {
	close(d.closing)
	err := errors.Join(d.udp.Close(), d.tcp.Close())
	d.wg.Wait()
	return err
}
