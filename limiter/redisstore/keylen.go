package redisstore

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// DefaultMaxKeyLen is the longest key stored as is unless WithMaxKeyLen
// says otherwise.
const DefaultMaxKeyLen = 256

// hashedKeyMark starts every hashed key. A key that itself starts with it
// is hashed too, whatever its length, so a raw key can never be mistaken
// for another key's hash.
const hashedKeyMark = "#sha256:"

// storedKey returns the Redis key (before the prefix) for key: key itself
// when it is at most maxLen bytes and does not start with hashedKeyMark,
// otherwise hashedKeyMark followed by the unpadded base64url SHA-256 of
// key (51 bytes in all). SHA-256 and not a seeded hash: every instance must
// map a key to the same Redis key, and an attacker must not find two keys
// that share one budget.
func storedKey(key string, maxLen int) string {
	if len(key) <= maxLen && !strings.HasPrefix(key, hashedKeyMark) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hashedKeyMark + base64.RawURLEncoding.EncodeToString(sum[:])
}

// truncate shortens key for an error message: an error must not carry an
// attacker's megabyte key into the logs.
func truncate(key string) string {
	const n = 64
	if len(key) <= n {
		return key
	}
	return key[:n] + "..."
}
