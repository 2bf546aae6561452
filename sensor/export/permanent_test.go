package export

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestPermanent: which stream errors end retrying. The TLS messages are
// the ones gRPC gives for a server that refuses the sensor's certificate
// (another CA, expired) and for a server certificate the sensor cannot
// verify.
func TestPermanent(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.PermissionDenied, `sensor id "x" does not match certificate identity`), true},
		{status.Error(codes.Unauthenticated, "no"), true},
		{status.Error(codes.InvalidArgument, "first message must be a hello with a sensor id"), true},
		{fmt.Errorf("%w 7: %w", errBatchRejected, status.Error(codes.InvalidArgument, "batch 7 rejected")), false},
		{status.Error(codes.Unavailable, `connection error: desc = "error reading server preface: remote error: tls: unknown certificate authority"`), true},
		{status.Error(codes.Unavailable, `connection error: desc = "error reading server preface: remote error: tls: expired certificate"`), true},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`), true},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`), false},
		{status.Error(codes.Unavailable, "store unavailable, retry later"), false},
		{status.Error(codes.Unavailable, "collector shutting down"), false},
		{status.Error(codes.ResourceExhausted, "too many sensor streams"), false},
		{status.Error(codes.DeadlineExceeded, "no hello in time"), false},
		{errors.New("open stream: EOF"), false},
		{nil, false},
	} {
		if got := permanent(c.err); got != c.want {
			t.Errorf("permanent(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
