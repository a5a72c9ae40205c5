// Package app is a small ledger-and-jobs HTTP service wired the way
// garrison recommends. Read it as a tutorial, top to bottom, file by file:
//
//   - frontdoor.go: the front door. limiter.Listener caps connections
//     globally and per source address and drops clients that send nothing
//     or trickle bytes; at the cap, a newcomer takes the slot of a held
//     connection that is not serving a request, from the source holding
//     the most (Preempt); connections refused from heavy sources are held
//     open and unread (the tarpit) so that a botnet does not redial them
//     at once; limiter.HardenServer fills in the timeouts and HTTP/2
//     limits an http.Server lacks by default. The public port speaks
//     HTTP/1.1 and cleartext HTTP/2.
//   - app.go: the configuration and the middleware: rate limit and
//     concurrency cap refuse excess requests with 429 and 503 and a
//     Retry-After, instead of queueing them.
//   - jobs.go: background work goes through a spawn.Spawner with a per-tenant
//     cap, never through a bare go statement, so a flood of requests cannot
//     turn into a flood of goroutines.
//   - ledger.go: account and journal locks are lockorder mutexes with lock
//     classes; transfers take both accounts with lockorder.LockAll; every
//     other acquisition has a timeout; billing counters live in a changuard.Guarded
//     so no read-modify-write can happen outside their lock.
//   - upstream.go: the payment provider is called under timeout.Run, which
//     names the operation in the error, and a timeout.Watchdog reports calls
//     that stall anyway.
//   - login.go: POST /login's limit per user name, in a fixed table that
//     an attacker cannot reset by flooding it with other names
//     (limiter.EvictStrict).
//   - bulk.go: uploads and downloads, what slow bodies and slow reads attack.
//   - debug.go: every primitive's Stats on GET /debug/garrison, on the
//     admin mux only.
//
// The service keeps one bug on purpose: audit takes the journal before the
// account, the opposite of transfer. It is what the siege's deadlock
// scenario attacks. Here it cannot hang the service, because every lock
// acquisition gives up after Config.LockTimeout, and a checking build
// (-race or -tags lockorder) reports the inversion with both call sites the
// first time both orders run, long before load makes them collide.
//
// The HTTP API (the naive twin in examples/siege serves the same one):
//
//	GET  /healthz
//	GET  /accounts/{id}                    balance
//	POST /deposit?account=ID&amount=N      balance += N, billing counters += 1, N
//	POST /transfer?from=ID&to=ID&amount=N  moves N, appends to the journal
//	GET  /audit?account=ID                 journal length and a balance
//	POST /jobs?tenant=NAME                 starts a background job (202)
//	POST /charge                           calls the payment provider
//	POST /upload                           reads the body, answers its size
//	GET  /download?size=N                  N zero bytes (default 1 MiB)
//	POST /login?user=NAME&password=PW      200, 401, or 429 once NAME had its attempts
//	GET  /usage                            billing counters
//
// The admin endpoints (AdminMux) are served on a separate listener bound
// to loopback, never on the public port:
//
//	GET  /debug/garrison                   Stats of every garrison primitive
package app
