// Package limiter keeps a server answering while an attacker floods it with
// connections or requests: connection floods, many source addresses,
// slowloris clients that open connections and trickle bytes, so that the
// accept loop and the handlers stop serving legitimate clients.
//
// It guards both layers. Listener wraps a net.Listener with a global and a
// per-IP cap on open connections, global and per-IP accept rates, and
// first-byte and minimum-read-rate timeouts, all in fixed memory; Accept
// never blocks on one address's limit. Keyed is a per-key GCRA rate limiter
// (like x/time/rate's Limiter, one per key) whose table has a fixed size,
// however many keys an attacker invents, and whose default EvictStrict
// policy never lets a flood of other keys reset one key's limit. Middleware
// applies a Keyed (or any RateLimiter, such as limiter/redisstore) to an
// http.Handler, keyed on the client address as trusted proxies report it
// (X-Forwarded-For, Forwarded or X-Real-IP; see Proxies), and answers 429
// with Retry-After and the IETF RateLimit headers; HardenServer gives
// an http.Server the timeouts Go leaves at zero; Preflight reports weak OS
// settings.
//
//	ln, _ := net.Listen("tcp", ":8080")
//	guarded, err := limiter.NewListener(ln,
//		limiter.WithMaxConns(4096),
//		limiter.WithMaxConnsPerIP(32),
//		limiter.WithFirstByteTimeout(5*time.Second))
//	if err != nil { /* invalid option */ }
//	perIP, err := limiter.NewKeyed(10, 20) // 10 req/s per client, bursts of 20
//	if err != nil { /* limits out of range */ }
//	srv := limiter.HardenServer(&http.Server{Handler: limiter.Middleware(perIP)(mux)})
//	for _, f := range limiter.Preflight() { log.Print(f) }
//	log.Fatal(srv.Serve(guarded))
//
// Everything that rejects says why, as a Reason, in Stats and in hooks.
package limiter
