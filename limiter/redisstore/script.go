package redisstore

import "github.com/redis/go-redis/v9"

// gcraScript is one GCRA step for one key, run atomically inside Redis.
//
// KEYS[1] holds the theoretical arrival time (TAT) in microseconds since the
// Unix epoch, on Redis' own clock. ARGV[1] is the emission interval T and
// ARGV[2] the tolerance tau = burst*T, both integer microseconds.
//
// Every value is an integer-valued Lua number below 2^53, so the arithmetic
// is exact: Redis' TIME in microseconds stays below 2^53 until the year 2255
// and New rejects a tau above 2^50.
//
// The TAT is passed to SET as a number, which Redis turns into a string
// that reads back to the same double (%.17g, or the shortest round-trip
// form in newer versions), so tonumber restores it exactly; formatting it in
// Lua made the script about a tenth slower here. The expiry is formatted,
// because PX takes only an integer literal.
//
// The reply is {allowed (0|1), remaining, retry_after_us, reset_after_us}.
// A denial writes nothing, so only admitted requests move the state and a
// key at rest expires when its bucket is full again.
const gcraSource = `
if redis.replicate_commands then redis.replicate_commands() end
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then tat = now end
local newtat = tat + t
local allowat = newtat - tau
if allowat > now then
  return {0, 0, allowat - now, tat - now}
end
redis.call('SET', KEYS[1], newtat, 'PX', string.format('%.0f', math.ceil((newtat - now) / 1000)))
return {1, math.floor((now - allowat) / t), 0, newtat - now}
`

// gcraScript computes its SHA-1 once, so EVALSHA needs no SCRIPT LOAD round
// trip; the first call on a server that lacks the script falls back to EVAL,
// which also caches it there.
var gcraScript = redis.NewScript(gcraSource)
