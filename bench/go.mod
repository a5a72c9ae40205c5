module github.com/garrison-go/garrison/bench

go 1.25.0

replace github.com/garrison-go/garrison => ../

require (
	github.com/alitto/pond/v2 v2.7.1
	github.com/garrison-go/garrison v0.0.0-00010101000000-000000000000
	github.com/garrison-go/garrison/limiter/redisstore v0.0.0-00010101000000-000000000000
	github.com/go-redis/redis_rate/v10 v10.0.1
	github.com/panjf2000/ants/v2 v2.12.1
	github.com/puzpuzpuz/xsync/v4 v4.5.0
	github.com/redis/go-redis/v9 v9.22.0
	github.com/sasha-s/go-deadlock v0.3.9
	github.com/sethvargo/go-limiter v0.7.1
	github.com/sourcegraph/conc v0.3.0
	go.uber.org/ratelimit v0.3.1
	golang.org/x/net v0.58.0
	golang.org/x/sync v0.22.0
	golang.org/x/time v0.15.0
)

require (
	github.com/benbjohnson/clock v1.3.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/petermattis/goid v0.0.0-20250813065127-a731cc31b4fe // indirect
	go.uber.org/atomic v1.11.0 // indirect
	go.uber.org/multierr v1.9.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/garrison-go/garrison/limiter/redisstore => ../limiter/redisstore
