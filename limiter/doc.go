// Package limiter keeps a server answering while an attacker floods it with
// connections or requests: connection floods, many source addresses,
// slowloris clients that open connections and trickle bytes, so that the
// accept loop and the handlers stop serving legitimate clients.
//
// It guards both layers. Listener wraps a net.Listener with a global and a
// per-IP cap on open connections, global and per-IP accept rates, and
// first-byte, minimum-read-rate and minimum-write-rate timeouts, all in
// fixed memory; Accept never blocks on one address's limit. Keyed is a
// per-key GCRA rate limiter (like x/time/rate's Limiter, one per key) whose
// table has a fixed size, however many keys an attacker invents, and whose
// default EvictStrict policy never lets a flood of other keys reset one
// key's limit. Middleware applies a Keyed (or any RateLimiter, such as
// limiter/redisstore) to an http.Handler, keyed on the client address as
// trusted proxies report it (X-Forwarded-For, Forwarded or X-Real-IP; see
// Proxies), and answers 429 with Retry-After and the IETF RateLimit
// headers; HardenServer gives an http.Server the timeouts and HTTP/2 limits
// Go leaves open; Listener.Harden wires a server to its Listener;
// Preflight reports weak OS settings. AdaptiveLimiter moves a concurrency
// limit with measured latency, and Readiness tells load balancers when the
// instance is overloaded.
//
//	ln, err := net.Listen("tcp", ":8080")
//	if err != nil { return err }
//	guarded, err := limiter.NewListener(ln,
//		limiter.WithMaxConns(4096),
//		limiter.WithOverflow(limiter.Preempt),
//		limiter.WithMaxConnsPerIP(64),
//		limiter.WithFirstByteTimeout(5*time.Second))
//	if err != nil { return err } // an invalid option
//	perIP, err := limiter.NewKeyed(10, 20) // 10 req/s per client, bursts of 20
//	if err != nil { return err }
//	srv, err := guarded.Harden(&http.Server{Handler: limiter.Middleware(perIP)(mux)})
//	if err != nil { return err }
//	for _, f := range guarded.Preflight() { log.Print(f) }
//	return srv.Serve(guarded)
//
// Everything that rejects says why, as a Reason, in Stats and in hooks.
//
// # Connection floods from many addresses
//
// A cap on connections is a resource an attacker can take. Per-IP caps do
// not stop it: with a cap of 512 and 32 per address, 17 addresses (17
// IPv6 /64s) hold every slot. Backpressure then leaves legitimate clients
// waiting behind held connections, and Shed hands each freed slot to
// whoever is next in the kernel's backlog, which during a flood is the
// attacker. Policy Preempt gives slots to whoever uses them: at the cap a
// newcomer takes the slot of a held connection that is not serving a
// request (no complete request yet, or idle between keep-alive requests),
// from the source holding the most such connections, the oldest first. A
// legitimate client holding a slot or two is reached only once every
// source holds as few, which takes more addresses than slots; an attacker
// source already holding its share is refused with one accept and one
// reset (FairShare) rather than churn connections. A connection serving a
// request is never preempted: with Listener.Harden, http.Server's
// ConnState tells the Listener which ones are. The choice is O(1) in the
// number of connections (see preempt.go for the structure). The other side
// of that promise: slots held by requests being served (a slow upload, a
// long stream, a handler an attacker makes slow) are never freed by
// preemption; bound them with WithMaxConnsPerIP, Keyed and
// ConcurrencyMiddleware per client, and with the server's and handlers'
// timeouts.
//
// Around it: WithFirstByteTimeout and WithMinReadRate cut silent and
// trickling clients, and with Harden the read rate applies only while a
// request head is being read, never to an idle keep-alive (IdleTimeout's
// business) nor while a handler runs; WithMinWriteRate cuts clients that
// read a response too slowly without capping honest long downloads;
// WithAdaptiveTimeouts shrinks the first-byte timeout as the listener fills;
// WithDeferAccept (Linux TCP_DEFER_ACCEPT) keeps connections that never
// speak out of Accept altogether; WithStreamRate and WithResetRate bound
// each connection's requests and cancellations, which cuts an HTTP/2
// rapid-reset client (CVE-2023-44487) within a burst.
//
// A reset tells a client to come back, and a botnet comes back at once: a
// flood of many times the cap, each connection redialled the moment it is
// closed, turns every refusal into another accept. So the Listener does
// not reset a connection it refuses from a heavy source (FairShare,
// IPConns, IPAcceptRate; under pressure, at least half the cap open, also
// a fresh connection preempted or cut as SlowClient from a source holding
// two or more): it parks it in a tarpit, open, unread,
// with no goroutine, until its hold time, its peer's close, the tarpit's
// budget or Close ends it. The budget is bounded by the file descriptors
// the process has to spare. It is counted under its Reason like a reset,
// and ListenerStats.Tarpitted says how many are held. Against the siege's
// botnet (64 times the cap from 32 addresses) it cut the dials from 61,053
// to 9,216 in 4 s and the legitimate client's p99 from 128 ms to 4 ms. An
// idle keep-alive is never parked. Behind a load balancer or NAT, where one
// address carries many clients, turn it off with WithoutTarpit; see
// WithTarpit.
//
// # What only the kernel or a load balancer can stop
//
// Every connection the Listener sees has completed a TCP handshake and cost
// an accept, a file descriptor and, closed early, a reset: tens of
// microseconds of CPU. A SYN flood (handshakes never completed) never
// reaches Accept: only SYN cookies (net.ipv4.tcp_syncookies, which
// Preflight checks) and the kernel's queues bound it. A volumetric flood,
// packets or handshakes faster than the machine can take them, saturates
// the link or the kernel before any user-space code runs, and a reconnect
// storm faster than Accept can cycle connections fills the accept queue,
// so that legitimate handshakes wait or are dropped there whatever the
// Listener decides. Those need filtering in front of the server: a load
// balancer or proxy with its own connection limits, SYN proxying, or an
// upstream scrubbing service. Behind such a proxy every connection comes
// from its address, so per-IP limits must then be keyed on the forwarded
// client address (Middleware) rather than on the connection.
package limiter
