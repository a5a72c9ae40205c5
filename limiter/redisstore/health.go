package redisstore

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// unhealthyPrefixes are the Redis error replies that say the server, not
// the key, is in trouble: still loading its data set, busy with a
// long-running script, a replica that lost its master or cannot take
// writes, a cluster that is down or resharding.
var unhealthyPrefixes = []string{
	"LOADING", "BUSY", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "TRYAGAIN",
	"MOVED", "ASK", "NOREPLICAS", "NOAUTH", "WRONGPASS", "NOPERM",
}

// unhealthy reports whether err says Redis as a whole cannot decide right
// now (a timeout, a connection error, one of unhealthyPrefixes), so that it
// should count towards the circuit breaker. Every other error reply (OOM
// for this key's write, WRONGTYPE, a script error) concerns the key alone.
// An error that is not a Redis reply at all (an unexpected script result,
// say) is treated as unhealthy: it cannot be pinned on the key.
func unhealthy(err error) bool {
	// Timeouts, refused or reset connections, a closed client: none of them
	// is a Redis error reply.
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true
	}
	msg := rerr.Error()
	for _, p := range unhealthyPrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
