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
)

// HardenServer fills srv's zero ReadHeaderTimeout, ReadTimeout,
// WriteTimeout, IdleTimeout and MaxHeaderBytes with the Harden* values and
// keeps every field already set (a negative timeout, which net/http reads
// as "none", is kept too: it was set on purpose). It modifies srv in place
// and returns it; a nil srv gets a new, hardened http.Server. Call it before
// the server starts.
//
// ReadTimeout bounds reading a whole request, body included, and
// WriteTimeout bounds a whole response: an upload or a streamed response
// (server-sent events, a large download) that needs longer must extend its
// own deadlines with http.ResponseController, or set the field first.
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
	return srv
}
