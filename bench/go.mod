module github.com/garrison-go/garrison/bench

go 1.25.0

replace github.com/garrison-go/garrison => ../

require (
	github.com/alitto/pond/v2 v2.7.1 // indirect
	github.com/benbjohnson/clock v1.3.0 // indirect
	github.com/panjf2000/ants/v2 v2.12.1 // indirect
	github.com/petermattis/goid v0.0.0-20250813065127-a731cc31b4fe // indirect
	github.com/puzpuzpuz/xsync/v4 v4.5.0 // indirect
	github.com/sasha-s/go-deadlock v0.3.9 // indirect
	github.com/sethvargo/go-limiter v0.7.1 // indirect
	github.com/sourcegraph/conc v0.3.0 // indirect
	go.uber.org/ratelimit v0.3.1 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/time v0.15.0 // indirect
)
