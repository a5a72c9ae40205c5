package limiter

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// h2Frame appends one HTTP/2 frame (RFC 9113 §4.1) to b.
func h2Frame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream&0x7fffffff)
	return append(b, payload...)
}

// rapidReset returns the bytes of a rapid-reset attack over h2c with prior
// knowledge: the preface, an empty SETTINGS, then n streams each opened
// with a GET and cancelled at once (CVE-2023-44487).
func rapidReset(n int) []byte {
	const (
		frameHeaders   = 0x1
		frameRSTStream = 0x3
		frameSettings  = 0x4
		endStream      = 0x1
		endHeaders     = 0x4
		cancelCode     = 0x8
	)
	// HPACK: :method GET, :scheme http, :path / from the static table,
	// :authority "x" as a literal with an indexed name.
	block := []byte{0x82, 0x86, 0x84, 0x01, 0x01, 'x'}
	b := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	b = h2Frame(b, frameSettings, 0, 0, nil)
	for i := range n {
		id := uint32(2*i + 1)
		b = h2Frame(b, frameHeaders, endStream|endHeaders, id, block)
		b = h2Frame(b, frameRSTStream, 0, id, binary.BigEndian.AppendUint32(nil, cancelCode))
	}
	return b
}

// TestRapidReset: the same attack (2,000 streams opened and cancelled on
// one connection) against a plain hardened server and one wired to the
// Listener. Go's own mitigation lets every stream start a handler; the
// wired server cuts the connection after about DefaultResetBurst resets.
func TestRapidReset(t *testing.T) {
	const streams = 2000
	run := func(wired bool) (calls int64, st ListenerStats) {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		l, err := NewListener(inner, WithOverflow(Preempt))
		require.NoError(t, err)
		var n atomic.Int64
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			<-r.Context().Done()
		})}
		if wired {
			_, err = l.Harden(srv)
			require.NoError(t, err)
		} else {
			HardenServer(srv)
		}
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		defer func() {
			require.NoError(t, srv.Close())
			require.ErrorIs(t, <-served, http.ErrServerClosed)
		}()

		c, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		closed := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, c); close(closed) }()
		_, _ = c.Write(rapidReset(streams)) // the wired server may cut it midway
		if wired {
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the wired server kept the attacking connection")
			}
		} else {
			require.Eventually(t, func() bool { return n.Load() >= streams/2 }, 10*time.Second, time.Millisecond)
		}
		return n.Load(), l.Stats()
	}
	naive, _ := run(false)
	guarded, st := run(true)
	t.Logf("handlers started: naive %d, guarded %d of %d streams", naive, guarded, streams)
	require.Equal(t, uint64(1), st.Rejected[StreamResets])
	require.LessOrEqual(t, guarded, int64(DefaultResetBurst+HardenHTTP2MaxConcurrentStreams))
	require.Less(t, 4*guarded, naive)
}
