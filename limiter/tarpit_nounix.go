//go:build !unix

package limiter

import "net"

// fdLimit: there is no RLIMIT_NOFILE outside Unix; the tarpit's budget is
// its max.
func fdLimit() (uint64, bool) { return 0, false }

// peerGone cannot peek without reading outside Unix: parked connections
// end by their hold time, budget or Close.
func peerGone(net.Conn) bool { return false }

// fdExhausted: Accept's descriptor errors are not portable outside Unix.
func fdExhausted(error) bool { return false }
