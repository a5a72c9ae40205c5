package limiter

import (
	"net/http"
	"time"
)

// The values HardenServer gives to an http.Server's zero fields. Go's own
// zero values mean "no timeout" and a 1 MiB header limit, which let one
// client hold a connection and a goroutine for ever.
const (
	HardenReadHeaderTimeout = 5 * time.Second
	HardenReadTimeout       = 30 * time.Second
	HardenWriteTimeout      = 30 * time.Second
	HardenIdleTimeout       = 120 * time.Second
	HardenMaxHeaderBytes    = 64 << 10

	// HTTP/2 (http.Server.HTTP2). Go's defaults are 250 streams per
	// connection, 1 MiB frames and no health check of a silent peer.
	HardenHTTP2MaxConcurrentStreams = 100
	HardenHTTP2MaxReadFrameSize     = 16 << 10 // the protocol minimum
	HardenHTTP2SendPingTimeout      = 30 * time.Second
	HardenHTTP2PingTimeout          = 10 * time.Second
	HardenHTTP2WriteByteTimeout     = 30 * time.Second
	HardenHTTP2HeaderTableSize      = 4 << 10 // HPACK table, each direction
)

// HardenServer fills srv's zero ReadHeaderTimeout, ReadTimeout,
// WriteTimeout, IdleTimeout and MaxHeaderBytes, and the zero fields of
// srv.HTTP2 (created if nil: MaxConcurrentStreams, MaxReadFrameSize, the
// HPACK table sizes, SendPingTimeout, PingTimeout, WriteByteTimeout), with
// the Harden* values and keeps every field already set (a negative timeout, which net/http reads
// as "none", is kept too: it was set on purpose). It modifies srv in place
// and returns it; a nil srv gets a new, hardened http.Server. Call it before
// the server starts.
//
// ReadTimeout bounds reading a whole request, body included, and
// WriteTimeout bounds a whole response: an upload or a streamed response
// (server-sent events, a large download) that needs longer must extend its
// own deadlines with http.ResponseController, or set the field first.
//
// The TLS handshake is bounded by net/http itself, by the smallest of
// ReadHeaderTimeout, ReadTimeout and WriteTimeout that is set: with these
// defaults, HardenReadHeaderTimeout. An HTTP/2 connection idles out after
// IdleTimeout, and one whose peer stops answering pings or stops taking
// data is closed after the ping and write-byte timeouts. The per-connection
// request and reset rates (rapid reset) need the Listener: see
// Listener.Harden.
func HardenServer(srv *http.Server) *http.Server {
	if srv == nil {
		srv = &http.Server{}
	}
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = HardenReadHeaderTimeout
	}
	if srv.ReadTimeout == 0 {
		srv.ReadTimeout = HardenReadTimeout
	}
	if srv.WriteTimeout == 0 {
		srv.WriteTimeout = HardenWriteTimeout
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = HardenIdleTimeout
	}
	if srv.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = HardenMaxHeaderBytes
	}
	hardenHTTP2(srv)
	return srv
}

func hardenHTTP2(srv *http.Server) {
	if srv.HTTP2 == nil {
		srv.HTTP2 = &http.HTTP2Config{}
	}
	h := srv.HTTP2
	fill := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	fillD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	fill(&h.MaxConcurrentStreams, HardenHTTP2MaxConcurrentStreams)
	fill(&h.MaxReadFrameSize, HardenHTTP2MaxReadFrameSize)
	fill(&h.MaxDecoderHeaderTableSize, HardenHTTP2HeaderTableSize)
	fill(&h.MaxEncoderHeaderTableSize, HardenHTTP2HeaderTableSize)
	fillD(&h.SendPingTimeout, HardenHTTP2SendPingTimeout)
	fillD(&h.PingTimeout, HardenHTTP2PingTimeout)
	fillD(&h.WriteByteTimeout, HardenHTTP2WriteByteTimeout)
}
