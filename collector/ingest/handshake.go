package ingest

import (
	"net"

	"google.golang.org/grpc/credentials"
)

// countingCreds wraps the server's TLS credentials so that a refused
// handshake (a certificate from another CA, no certificate, plaintext or
// garbage on the port) is counted as a refused stream and logged,
// rate-limited, with the remote address. gRPC itself drops such
// connections silently.
type countingCreds struct {
	credentials.TransportCredentials
	s *Server
}

// ServerHandshake implements credentials.TransportCredentials.
func (c countingCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		c.s.metrics.streams.WithLabelValues("refused_tls").Inc()
		c.s.rlog.warn("tls-handshake", "refused a connection: TLS handshake failed",
			"remote", raw.RemoteAddr().String(), "err", err)
	}
	return conn, info, err
}

// Clone implements credentials.TransportCredentials.
func (c countingCreds) Clone() credentials.TransportCredentials {
	return countingCreds{TransportCredentials: c.TransportCredentials.Clone(), s: c.s}
}
