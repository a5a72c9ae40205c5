package main

import (
	"flag"
	"time"

	"github.com/garrison-go/garrison/examples/hardened-server/app"
	"github.com/garrison-go/garrison/limiter"
)

// options is the command line: where to listen, and every limit of
// app.Config. A flag left at its default keeps the Config field at its
// zero value, so the defaults live in one place (app.Config and
// limiter.HardenServer) and -h prints them from there.
type options struct {
	addr          string
	adminAddr     string
	upstream      string
	upstreamDelay time.Duration
	grace         time.Duration
	cfg           app.Config
}

// defaults returns the options of a run without flags.
func defaults() options {
	var o options
	o.bind(flag.NewFlagSet("defaults", flag.ContinueOnError))
	return o
}

func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "public address to listen on")
	fs.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:6060", "address of the admin endpoints (/debug/garrison); keep it on loopback; empty disables them")
	fs.StringVar(&o.upstream, "upstream", "", "payment provider base URL (default: a built-in stand-in on loopback)")
	fs.DurationVar(&o.upstreamDelay, "upstream-delay", 20*time.Millisecond, "how long the built-in stand-in provider takes to answer")
	fs.DurationVar(&o.grace, "grace", 10*time.Second, "how long shutdown waits for requests and jobs in flight")

	c := &o.cfg
	d := app.Defaults()
	// Connections (limiter.Listener).
	fs.IntVar(&c.MaxConns, "max-conns", d.MaxConns, "open connections at most")
	fs.StringVar(&c.Overflow, "overflow", d.Overflow, "at -max-conns: preempt (close a held conn not serving a request), shed (refuse the newcomer) or backpressure")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", d.MaxConnsPerIP, "open connections per source address at most")
	fs.DurationVar(&c.FirstByteTimeout, "first-byte-timeout", d.FirstByteTimeout, "close a connection that sends nothing for this long (negative: never)")
	fs.Float64Var(&c.AdaptiveFloor, "adaptive-floor", d.AdaptiveFloor, "the first-byte timeout shrinks to this fraction of itself as the listener fills (1: fixed)")
	fs.DurationVar(&c.DeferAccept, "defer-accept", d.DeferAccept, "Linux TCP_DEFER_ACCEPT: keep a connection in the kernel until its first byte, this long at most (negative: off)")
	fs.IntVar(&c.MinReadRate, "min-read-rate", d.MinReadRate, "close a connection that sends a request head slower than this many bytes/s (negative: off)")
	fs.IntVar(&c.MinWriteRate, "min-write-rate", d.MinWriteRate, "close a connection that takes a response slower than this many bytes/s (negative: off)")
	fs.DurationVar(&c.MinWriteWindow, "min-write-window", d.MinWriteWindow, "window over which -min-write-rate is judged")
	fs.Float64Var(&c.StreamRate, "stream-rate", limiter.DefaultStreamRate, "requests (HTTP/2 streams) started per second per connection (negative: off)")
	fs.IntVar(&c.StreamBurst, "stream-burst", limiter.DefaultStreamBurst, "burst of -stream-rate")
	fs.Float64Var(&c.ResetRate, "reset-rate", limiter.DefaultResetRate, "requests cancelled by the client (HTTP/2 rapid reset) per second per connection (negative: off)")
	fs.IntVar(&c.ResetBurst, "reset-burst", limiter.DefaultResetBurst, "burst of -reset-rate")
	fs.IntVar(&c.TarpitMax, "tarpit", d.TarpitMax, "hold at most this many refused connections of heavy sources open and unread instead of resetting them (0: 64 × -max-conns; negative: off, e.g. behind a load balancer)")
	fs.DurationVar(&c.TarpitHold, "tarpit-hold", d.TarpitHold, "hold a refused connection this long at most (0: 30s)")
	fs.DurationVar(&c.RejectLogEvery, "reject-log-every", d.RejectLogEvery, "log refused, preempted and cut connections, one line per reason per period (negative: never)")
	// The http.Server (Listener.Harden fills what is left at zero).
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", limiter.HardenReadHeaderTimeout, "time to read a request's header")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", limiter.HardenReadTimeout, "time to read a whole request, body included")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 0, "time to write a whole response (0: none while -min-write-rate is on, else "+limiter.HardenWriteTimeout.String()+")")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", limiter.HardenIdleTimeout, "how long an idle keep-alive connection stays open")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", limiter.HardenMaxHeaderBytes, "request header size limit")
	fs.BoolVar(&c.DisableHTTP2, "no-http2", false, "serve HTTP/1.1 only (default: HTTP/1.1 and cleartext HTTP/2)")
	fs.IntVar(&c.H2MaxStreams, "h2-max-streams", limiter.HardenHTTP2MaxConcurrentStreams, "concurrent streams per HTTP/2 connection")
	// Requests (limiter middleware).
	// rate.Limit is a float64 of requests per second.
	fs.Float64Var((*float64)(&c.RatePerIP), "rate-per-ip", float64(d.RatePerIP), "requests per second per source address")
	fs.IntVar(&c.BurstPerIP, "burst-per-ip", d.BurstPerIP, "request burst per source address")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", d.MaxInFlight, "requests handled at once at most")
	fs.IntVar(&c.LoginBurst, "login-burst", d.LoginBurst, "login attempts per user name before the limit")
	fs.DurationVar(&c.LoginEvery, "login-every", d.LoginEvery, "then one login attempt per user name per this period")
	fs.IntVar(&c.LoginUsers, "login-users", d.LoginUsers, "user names the login limit tracks (fixed memory; evicted names keep their debt)")
	fs.Float64Var((*float64)(&c.LoginRatePerIP), "login-rate-per-ip", float64(d.LoginRatePerIP), "logins per second per source address, whatever the user names")
	fs.IntVar(&c.LoginBurstPerIP, "login-burst-per-ip", d.LoginBurstPerIP, "login burst per source address")
	// Background jobs (spawn) and timeouts.
	fs.IntVar(&c.MaxJobs, "max-jobs", d.MaxJobs, "background jobs running at once at most")
	fs.IntVar(&c.JobQueue, "job-queue", d.JobQueue, "background jobs waiting to run at most")
	fs.IntVar(&c.JobsPerTenant, "jobs-per-tenant", d.JobsPerTenant, "a tenant's running plus queued jobs at most")
	fs.DurationVar(&c.JobTimeout, "job-timeout", d.JobTimeout, "life of one background job")
	fs.DurationVar(&c.LockTimeout, "lock-timeout", d.LockTimeout, "longest wait for a ledger lock")
	fs.DurationVar(&c.UpstreamTimeout, "upstream-timeout", d.UpstreamTimeout, "budget of one call to the payment provider")
	fs.DurationVar(&c.StallAfter, "stall-after", d.StallAfter, "when the watchdog reports and cancels a provider call")
}
