package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/examples/internal/work"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// Config holds the service's knobs. The zero value of every limit means
// "use the default" documented on the field: the defaults are finite, so a
// Config that sets only the business fields is already safe.
type Config struct {
	// Upstream is the payment provider's base URL, called by POST /charge.
	Upstream string
	// Job is the background work started by POST /jobs.
	Job work.Job
	// LockPause is the work a transfer or an audit does between its locks.
	LockPause time.Duration
	// CheckPause is the fraud check a deposit makes before it is recorded.
	CheckPause time.Duration

	// The front door (frontdoor.go): the listener's limits and the
	// http.Server's. A negative duration or rate turns that limit off.
	// The defaults are the ones the siege's botnet, keep-alive and HTTP/2
	// scenarios and the slowhttptest CI check measure.
	//
	// MaxConns caps open connections (default 512).
	MaxConns int
	// Overflow is what happens at MaxConns: "preempt" (default: close a
	// held connection that is not serving a request, from the source
	// holding the most), "shed" (refuse the newcomer) or "backpressure"
	// (leave it in the kernel's backlog).
	Overflow string
	// MaxConnsPerIP caps open connections per source address (default 64).
	MaxConnsPerIP int
	// FirstByteTimeout closes a connection that sends nothing (default
	// 5 s), shrinking to AdaptiveFloor of it as the listener fills
	// (default 0.2; 1 or negative: fixed).
	FirstByteTimeout time.Duration
	AdaptiveFloor    float64
	// TarpitMax is how many connections refused or preempted from heavy
	// sources under pressure are held open and unread instead of reset,
	// so that a botnet does not redial them at once (default: the
	// limiter's, 64 × MaxConns, within the spare file descriptors;
	// negative: off, as behind a load balancer). TarpitHold is how long
	// one is held at most (default 30 s).
	TarpitMax  int
	TarpitHold time.Duration
	// DeferAccept leaves a connection in the kernel until its first byte
	// arrives, for up to this long (Linux TCP_DEFER_ACCEPT; default 2 s).
	DeferAccept time.Duration
	// MinReadRate closes a connection that, while a request head is being
	// read, sends fewer bytes per second than this, measured over one
	// second (default 256). Idle keep-alive connections are not judged:
	// IdleTimeout governs them.
	MinReadRate int
	// MinWriteRate closes a connection that takes a response slower than
	// this many bytes per second over MinWriteWindow (defaults 1024 and
	// 10 s): a slow read. It replaces WriteTimeout for downloads.
	MinWriteRate   int
	MinWriteWindow time.Duration
	// StreamRate and ResetRate bound, per connection, how fast requests
	// (HTTP/2 streams) start and how fast they end cancelled by the
	// client (HTTP/2 rapid reset); 0: the limiter's defaults.
	StreamRate, ResetRate   float64
	StreamBurst, ResetBurst int
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// http.Server's (defaults: limiter.HardenServer's; WriteTimeout none
	// while MinWriteRate is on).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes caps a request's header (default: HardenServer's).
	MaxHeaderBytes int
	// DisableHTTP2 serves HTTP/1.1 only. By default the public port also
	// speaks HTTP/2 without TLS (h2c, prior knowledge), as a service
	// behind a TLS-terminating proxy does.
	DisableHTTP2 bool
	// H2MaxStreams caps the concurrent streams of one HTTP/2 connection
	// (default: HardenServer's).
	H2MaxStreams int
	// RejectLogEvery is how often the log gets one line per reason for the
	// connections the listener refused, preempted or cut (default 10 s;
	// negative: never). A flood costs thousands a second: one line each
	// would turn it into a logging flood.
	RejectLogEvery time.Duration

	// RatePerIP and BurstPerIP limit requests per source address
	// (defaults 200/s and 400).
	RatePerIP  rate.Limit
	BurstPerIP int
	// MaxInFlight caps requests being handled at once (default 256).
	MaxInFlight int

	// MaxJobs caps running background jobs (default 8), JobQueue the jobs waiting to run (default 32),
	// JobsPerTenant a tenant's running plus queued jobs (default 4) and
	// JobTimeout the life of one job (default 10 s).
	MaxJobs       int
	JobQueue      int
	JobsPerTenant int
	JobTimeout    time.Duration

	// LoginBurst, LoginEvery and LoginUsers are POST /login's limit per
	// user name: LoginBurst attempts (default 5), then one per LoginEvery
	// (default 12 s), in a table of LoginUsers names (default
	// limiter.DefaultCapacity) that an attacker cannot reset by flooding
	// it with other names (see login.go).
	LoginBurst int
	LoginEvery time.Duration
	LoginUsers int
	// LoginRatePerIP and LoginBurstPerIP limit logins per client address
	// (defaults 10/s and 20), whatever the user names: the bound on how
	// fast one address can push new names into the per-user table.
	LoginRatePerIP  rate.Limit
	LoginBurstPerIP int

	// LockTimeout bounds every lock acquisition with a timeout (default
	// 10 ms: the ledger holds its locks for about a millisecond, so a longer
	// wait means something is wrong, and waiting longer only lets requests
	// queue up behind it).
	LockTimeout time.Duration
	// UpstreamTimeout bounds one call to the provider (default 250 ms).
	UpstreamTimeout time.Duration
	// StallAfter is when the watchdog reports and cancels an upstream
	// call that is still running (default 2 s).
	StallAfter time.Duration

	// Logger receives lock-order reports and stalled calls (default: the
	// standard logger).
	Logger *log.Logger
}

// Defaults returns a Config with every limit at its default, for a
// command line to show them (business fields and Logger stay zero).
func Defaults() Config {
	var c Config
	c.setDefaults()
	c.Logger = nil
	return c
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxConns, 512)
	if c.Overflow == "" {
		c.Overflow = "preempt"
	}
	def(&c.MaxConnsPerIP, 64)
	defDur(&c.FirstByteTimeout, 5*time.Second)
	if c.AdaptiveFloor == 0 {
		c.AdaptiveFloor = 0.2
	}
	defDur(&c.DeferAccept, 2*time.Second)
	def(&c.MinReadRate, 256)
	def(&c.MinWriteRate, 1024)
	defDur(&c.MinWriteWindow, 10*time.Second)
	defDur(&c.RejectLogEvery, 10*time.Second)
	// The http.Server's own limits stay zero here: HardenServer fills
	// them, so the tutorial's values and the library's cannot drift.
	if c.RatePerIP == 0 {
		c.RatePerIP = 200
	}
	def(&c.BurstPerIP, 400)
	def(&c.MaxInFlight, 256)
	def(&c.MaxJobs, 8)
	def(&c.JobQueue, 32)
	def(&c.JobsPerTenant, 4)
	defDur(&c.JobTimeout, 10*time.Second)
	def(&c.LoginBurst, 5)
	defDur(&c.LoginEvery, 12*time.Second)
	def(&c.LoginUsers, limiter.DefaultCapacity)
	if c.LoginRatePerIP == 0 {
		c.LoginRatePerIP = 10
	}
	def(&c.LoginBurstPerIP, 20)
	defDur(&c.LockTimeout, 10*time.Millisecond)
	defDur(&c.UpstreamTimeout, 250*time.Millisecond)
	defDur(&c.StallAfter, 2*time.Second)
	if c.Logger == nil {
		c.Logger = log.Default()
	}
}

// App is the service. Create it with New, serve with Serve, stop with
// Shutdown.
type App struct {
	cfg      Config
	ledger   *ledger
	jobs     *spawn.Spawner
	upstream *upstream
	perIP    *limiter.Keyed
	// loginLimit and loginPerIP are POST /login's limits per user name
	// and per client address.
	loginLimit *limiter.Keyed
	loginPerIP *limiter.Keyed
	srv        *http.Server

	rateRejected     atomic.Int64
	loginRejected    atomic.Int64
	inFlightRejected atomic.Int64

	mu sync.Mutex
	ln *limiter.Listener // set by Serve, read by Stats
	lockOrderLog
}

// New builds the service. Every garrison constructor validates its options,
// so a bad Config is an error here (or, for the listener limits, from
// Serve), never a panic under load.
func New(cfg Config) (*App, error) {
	cfg.setDefaults()
	if cfg.LockTimeout < 0 || cfg.UpstreamTimeout < 0 {
		return nil, fmt.Errorf("app: LockTimeout and UpstreamTimeout must not be negative")
	}
	a := &App{cfg: cfg}
	var err error
	if a.ledger, err = newLedger(cfg); err != nil {
		return nil, err
	}
	if a.jobs, err = newJobs(cfg); err != nil {
		return nil, err
	}
	if a.upstream, err = newUpstream(cfg); err != nil {
		_ = a.jobs.Shutdown(context.Background())
		return nil, err
	}
	// One GCRA bucket per source address, in a table of fixed size: a
	// million spoofed addresses cost the same memory as 4096.
	if a.perIP, err = limiter.NewKeyed(cfg.RatePerIP, cfg.BurstPerIP, limiter.WithCapacity(4096)); err != nil {
		_ = a.stopWorkers(context.Background())
		return nil, err
	}
	if a.loginPerIP, err = newLoginPerIP(cfg); err != nil {
		_ = a.stopWorkers(context.Background())
		return nil, err
	}
	if a.loginLimit, err = newLoginLimit(cfg); err != nil {
		_ = a.stopWorkers(context.Background())
		return nil, err
	}
	a.srv = a.newServer()
	return a, nil
}

// Handler returns the service's HTTP handler with its middleware: the rate
// limit runs first because a refusal there costs least, then the
// concurrency cap, then the routes.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /accounts/{id}", a.getAccount)
	mux.HandleFunc("POST /deposit", a.deposit)
	mux.HandleFunc("POST /transfer", a.transfer)
	mux.HandleFunc("GET /audit", a.audit)
	mux.HandleFunc("POST /jobs", a.startJob)
	mux.HandleFunc("POST /charge", a.charge)
	mux.HandleFunc("POST /upload", a.upload)
	mux.HandleFunc("GET /download", a.download)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /usage", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, a.Usage()) })

	// Keys are RemoteAddr: this service is not behind a proxy. Behind one,
	// add limiter.WithTrustedProxies with the proxy's prefixes, never read
	// X-Forwarded-For yourself: its leftmost entry is whatever the client
	// wrote.
	var h http.Handler = mux
	h = limiter.ConcurrencyMiddleware(a.cfg.MaxInFlight, limiter.WithOnReject(func(*http.Request, limiter.Decision, error) {
		a.inFlightRejected.Add(1)
	}))(h)
	h = limiter.Middleware(a.perIP, limiter.WithOnReject(func(*http.Request, limiter.Decision, error) {
		a.rateRejected.Add(1)
	}))(h)
	return h
}

// Shutdown stops the service gracefully: it stops accepting, lets the
// requests in flight finish, drains the background jobs, and stops the
// watchdog. When ctx ends first, it cancels what is still running and
// returns ctx's cause along with anything else that failed.
func (a *App) Shutdown(ctx context.Context) error {
	err := a.srv.Shutdown(ctx)
	if err != nil {
		// Requests still running past the grace period are cut off; their
		// handlers see their contexts end.
		err = errors.Join(err, a.srv.Close())
	}
	return errors.Join(err, a.stopWorkers(ctx))
}

func (a *App) stopWorkers(ctx context.Context) error {
	err := a.jobs.Shutdown(ctx)
	if err != nil && ctx.Err() != nil {
		// The grace period is over and the spawner has cancelled the jobs'
		// contexts; give them a moment to notice before returning, so that
		// nothing this service started outlives Shutdown. A job that ignores
		// its context is still running after that, and says so in Stats.
		wctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
		defer cancel()
		_ = a.jobs.Shutdown(wctx)
	}
	return errors.Join(err, a.upstream.close())
}

// cancelGrace is how long Shutdown waits, after its own deadline, for the
// jobs it cancelled to return.
const cancelGrace = time.Second

// Usage returns the billing counters.
func (a *App) Usage() Usage { return a.ledger.usageNow() }

// httpError answers with code and a body saying why, adding Retry-After to
// the refusals that a client should retry later.
func httpError(w http.ResponseWriter, code int, err error) {
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, err.Error(), code)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func queryAmount(r *http.Request) (int64, error) {
	n, err := strconv.ParseInt(r.URL.Query().Get("amount"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("amount must be a positive integer")
	}
	return n, nil
}

// errorStatus maps an error to the status that tells the client what to do.
func errorStatus(err error) int {
	var te *timeout.Error
	switch {
	case errors.As(err, &te):
		return http.StatusGatewayTimeout
	case errors.Is(err, errLockTimeout):
		return http.StatusServiceUnavailable
	case errors.Is(err, errNoAccount):
		return http.StatusNotFound
	case errors.Is(err, errFunds):
		return http.StatusConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
