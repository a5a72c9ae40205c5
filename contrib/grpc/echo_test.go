package garrisongrpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The test service, declared by hand instead of generated: Unary echoes its
// request, or runs the test's hook first; Bidi echoes every message until
// the client closes its side.
type echoServer struct {
	unary func(ctx context.Context, in *wrapperspb.StringValue) error
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "garrison.test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				in := req.(*wrapperspb.StringValue)
				if f := srv.(*echoServer).unary; f != nil {
					if err := f(ctx, in); err != nil {
						return nil, err
					}
				}
				return in, nil
			}
			if icpt == nil {
				return h(ctx, in)
			}
			return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/garrison.test.Echo/Unary"}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Bidi",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			for {
				in := new(wrapperspb.StringValue)
				if err := stream.RecvMsg(in); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				if err := stream.SendMsg(in); err != nil {
					return err
				}
			}
		},
	}},
}

// serve starts a server with opts on a loopback port and returns its
// address; it stops when the test ends.
func serve(t *testing.T, srv *echoServer, opts ...grpc.ServerOption) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer(opts...)
	s.RegisterService(&echoDesc, srv)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Stop()
		require.NoError(t, <-done)
	})
	return ln.Addr().String()
}

// dial connects to addr from the loopback address from (127.0.0.N), so
// that one machine can play many peers.
func dial(t *testing.T, addr string, from string) *grpc.ClientConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", a)
		}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func unary(ctx context.Context, conn *grpc.ClientConn, msg string) error {
	out := new(wrapperspb.StringValue)
	return conn.Invoke(ctx, "/garrison.test.Echo/Unary", wrapperspb.String(msg), out)
}
