package limiterbench

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/garrison-go/garrison/limiter"
)

// hardenedOptions are the Listener options examples/hardened-server uses
// (without TCP_DEFER_ACCEPT, which an in-memory listener cannot take).
func hardenedOptions() []limiter.ListenerOption {
	return []limiter.ListenerOption{
		limiter.WithMaxConns(limiter.DefaultMaxConns), limiter.WithOverflow(limiter.Preempt),
		limiter.WithMaxConnsPerIP(64), limiter.WithFirstByteTimeout(5 * time.Second),
		limiter.WithAdaptiveTimeouts(0.2), limiter.WithMinReadRate(256, time.Second),
		limiter.WithMinWriteRate(1024, 10*time.Second),
	}
}

// pipeListener hands out in-memory connections with distinct source
// addresses: a full listener of 10,000 held connections without 20,000
// file descriptors.
type pipeListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

func (p *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.ch:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}
func (p *pipeListener) Close() error   { p.once.Do(func() { close(p.done) }); return nil }
func (p *pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

// push queues a connection from source i (one of 1,000 IPv4 addresses).
func (p *pipeListener) push(i int) net.Conn {
	return p.pushFrom(netip.AddrFrom4([4]byte{10, 9, byte(i / 250), byte(i%250 + 1)}))
}

// pushNew queues a connection from the i-th of 2^24 addresses no held
// connection uses: a newcomer whose source holds nothing, which the
// fair-share rule never sheds, so every op is a preemption.
func (p *pipeListener) pushNew(i int) net.Conn {
	return p.pushFrom(netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}))
}

func (p *pipeListener) pushFrom(a netip.Addr) net.Conn {
	server, client := net.Pipe()
	p.ch <- &addrConn{Conn: server, remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 1))}
	return client
}

// BenchmarkPreempt: the listener holds held connections (cap = held), none
// of them serving, from 1,000 sources; each op is one newcomer that
// preempts a held connection: choice, close of the victim and admission.
// An O(1) decision costs the same ns/op at 100 and at 10,000 held.
func BenchmarkPreempt(b *testing.B) {
	for _, held := range []int{100, 10_000} {
		b.Run("held="+strconv.Itoa(held)+"/garrison", func(b *testing.B) {
			inner := &pipeListener{ch: make(chan net.Conn, 1), done: make(chan struct{})}
			l, err := limiter.NewListener(inner, limiter.WithMaxConns(held), limiter.WithOverflow(limiter.Preempt),
				limiter.WithoutFirstByteTimeout())
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var clients []net.Conn
			defer func() {
				for _, c := range clients {
					_ = c.Close()
				}
			}()
			for i := range held {
				clients = append(clients, inner.push(i%1000))
				if _, err := l.Accept(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			defer cpu.report(b)
			for i := 0; i < b.N; i++ {
				c := inner.pushNew(i)
				if _, err := l.Accept(); err != nil {
					b.Fatal(err)
				}
				_ = c.Close() // the client end; its server end is preempted later
			}
			b.StopTimer()
			if st := l.Stats(); st.Rejected[limiter.Preempted] < uint64(b.N) {
				b.Fatalf("only %d of %d newcomers preempted", st.Rejected[limiter.Preempted], b.N)
			}
		})
	}
}
