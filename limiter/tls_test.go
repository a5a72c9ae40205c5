package limiter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "limiter test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestHardenTLS: behind TLS (HTTP/1.1 and HTTP/2), http.Server reports
// *tls.Conn to ConnState and ConnContext; the Listener still finds its own
// connection under it, so an idle keep-alive is known as idle (and
// preemptable) and requests are counted per connection.
func TestHardenTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "http2"}[h2], func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			l, err := NewListener(inner, WithOverflow(Preempt))
			require.NoError(t, err)
			var proto string
			var states []connState
			srv, err := l.Harden(&http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					proto = r.Proto
					c, _ := r.Context().Value(connKey{}).(*conn)
					if c != nil && c.http.Load() {
						states = append(states, connState(c.state.Load()))
					}
					_, _ = io.WriteString(w, "ok")
				}),
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
			})
			require.NoError(t, err)
			served := make(chan error, 1)
			go func() { served <- srv.ServeTLS(l, "", "") }()

			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
			if !h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			client := &http.Client{Transport: tr}
			for range 3 {
				resp, err := client.Get("https://" + l.Addr().String() + "/")
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				require.Equal(t, "ok", string(body))
			}
			require.Equal(t, map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2], proto)
			// Every request saw its connection active: ConnState reached
			// the Listener's conn through the *tls.Conn.
			require.Equal(t, []connState{stActive, stActive, stActive}, states)
			// The one keep-alive connection, between requests, is idle in
			// the ledger: ConnState reached it through the *tls.Conn.
			require.Eventually(t, func() bool { return l.Stats().Preemptable == 1 }, 5*time.Second, time.Millisecond)
			st := l.Stats()
			require.Equal(t, int64(1), st.Active)
			require.Equal(t, uint64(1), st.Accepted)
			tr.CloseIdleConnections()
			require.NoError(t, srv.Close())
			require.ErrorIs(t, <-served, http.ErrServerClosed)
		})
	}
}
