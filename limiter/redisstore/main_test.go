package redisstore

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The outage tests make go-redis log every refused dial; the tests
	// assert on what matters, so the log would only bury the results.
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// addrEnv names the variable holding host:port of the Redis the tests use.
// .ci/checks/redisstore.sh starts one and sets it.
const addrEnv = "GARRISON_REDIS_ADDR"

// sharedAddr returns the test Redis' address, skipping the test when none
// is configured, except in CI where a skipped Redis test would hide that
// nothing was tested.
func sharedAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(addrEnv)
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is empty: CI must run the Redis-backed tests (.ci/checks/redisstore.sh starts a redis-server and sets it)", addrEnv)
		}
		t.Skipf("%s is empty: start a redis-server and set %s=host:port to run this Redis-backed test", addrEnv, addrEnv)
	}
	return addr
}

// newClient returns a client for addr that honours context deadlines, closed
// when the test ends so its pool goroutines do not outlive it.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniquePrefix gives each test run its own keys, so -count N and parallel
// runs against one Redis never see each other's state.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("garrison-test:%s:%x:", t.Name(), rand.Uint64())
}

// newTestLimiter builds a Limiter for correctness tests: a timeout long
// enough for a loaded CI machine under -race, and FailClosed with no breaker
// so that any Redis trouble surfaces as an error instead of a fallback.
func newTestLimiter(t testing.TB, c redis.UniversalClient, r float64, burst int, opts ...Option) *Limiter {
	t.Helper()
	base := []Option{
		WithPrefix(uniquePrefix(t)),
		WithTimeout(5 * time.Second),
		WithFailPolicy(FailClosed),
		WithCircuitBreaker(0, 0),
	}
	l, err := New(c, rateOf(r), burst, append(base, opts...)...)
	require.NoError(t, err)
	return l
}

// redisNow reads Redis' clock in microseconds, the clock the script uses.
func redisNow(t testing.TB, c *redis.Client) int64 {
	t.Helper()
	tm, err := c.Time(context.Background()).Result()
	require.NoError(t, err)
	return tm.UnixMicro()
}

// server is a redis-server process owned by one test, so the test can stop,
// freeze and restart it on the same port.
type server struct {
	t    testing.TB
	bin  string
	addr string
	cmd  *exec.Cmd
}

// startServer starts a private redis-server on a free loopback port. It
// skips the test when redis-server is not installed, except in CI.
func startServer(t testing.TB) *server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not on PATH: CI must run the outage tests (.ci/checks/redisstore.sh installs it)")
		}
		t.Skip("redis-server is not on PATH: install it to run the outage tests")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	s := &server{t: t, bin: bin, addr: addr}
	s.start()
	t.Cleanup(func() {
		if s.cmd != nil {
			s.kill()
		}
	})
	return s
}

func (s *server) start() {
	s.t.Helper()
	_, port, err := net.SplitHostPort(s.addr)
	require.NoError(s.t, err)
	// Stdout and stderr stay nil (the null device), so exec starts no
	// copying goroutines for goleak to find.
	s.cmd = exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	require.NoError(s.t, s.cmd.Start())
	require.Eventually(s.t, s.ping, 10*time.Second, 10*time.Millisecond,
		"redis-server on %s did not answer PING", s.addr)
}

// ping reports whether the server answers PING within a short deadline.
func (s *server) ping() bool {
	conn, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// kill stops the server abruptly, as a crash or a lost host would.
func (s *server) kill() {
	s.t.Helper()
	require.NoError(s.t, s.cmd.Process.Kill())
	_ = s.cmd.Wait()
	s.cmd = nil
}

// freeze and thaw stop and resume the process: connections stay open but
// nothing answers, as with a Redis stuck on a slow command or a partition.
func (s *server) freeze() { require.NoError(s.t, s.cmd.Process.Signal(syscall.SIGSTOP)) }
func (s *server) thaw()   { require.NoError(s.t, s.cmd.Process.Signal(syscall.SIGCONT)) }
