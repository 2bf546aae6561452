package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/collector/api/client"
	"github.com/tapir-sensor/tapir/pcapio"
)

// `tapir pcap --flow ID | --query EXPR` pulls the capture from a
// collector's API:
//
//	tapir pcap --flow 1:yvyB8h+3dnggTZW0UEITWCst97w= -o flow.pcap
//	tapir pcap --query 'host 10.0.0.1 and port 53 and after 1h ago' --format pcapng -o dns.pcapng
func init() {
	pcapSources = append(pcapSources, func() pcapSource { return &apiSource{} })
}

// serverFlags are the flags of every command that talks to the API.
type serverFlags struct {
	server, tokenFile, ca, cert, key string
	timeout                          time.Duration
}

func (s *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.server, "server", os.Getenv("TAPIR_SERVER"), "collector API address, e.g. https://collector:8443 (env TAPIR_SERVER)")
	fs.StringVar(&s.tokenFile, "token-file", "", "file holding the bearer token (default: env TAPIR_TOKEN)")
	fs.StringVar(&s.ca, "ca", os.Getenv("TAPIR_CA"), "CA certificate that verifies the server, e.g. the ca.pem 'tapir certs' made (env TAPIR_CA; default: system roots)")
	fs.StringVar(&s.cert, "cert", "", "client certificate (optional, with --key)")
	fs.StringVar(&s.key, "key", "", "client certificate key")
	fs.DurationVar(&s.timeout, "timeout", 0, "overall request timeout (0: none)")
}

func (s *serverFlags) client() (*client.Client, error) {
	tok, err := client.ReadToken(s.tokenFile, os.Getenv("TAPIR_TOKEN"))
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Config{Server: s.server, Token: tok, CAFile: s.ca, CertFile: s.cert, KeyFile: s.key, Timeout: s.timeout})
	if errors.Is(err, client.ErrNoServer) {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, err
}

// apiSource is the API packet source of `tapir pcap`.
type apiSource struct {
	srv                  serverFlags
	flow, query          string
	maxPackets, maxBytes int64
	maxFlows             int
	truncate             bool
}

func (s *apiSource) flags(fs *flag.FlagSet) {
	s.srv.register(fs)
	fs.StringVar(&s.flow, "flow", "", "pull this flow from the collector: Community ID (1:...) or flow ID")
	fs.StringVar(&s.query, "query", "", "pull every flow matching this query from the collector")
	fs.Int64Var(&s.maxPackets, "max-packets", 0, "lower the server's packet cap")
	fs.Int64Var(&s.maxBytes, "max-bytes", 0, "lower the server's byte cap")
	fs.IntVar(&s.maxFlows, "max-flows", 0, "with --query: lower the server's flow cap")
	fs.BoolVar(&s.truncate, "truncate", false, "accept the first packets up to a cap instead of an error")
}

func (s *apiSource) selected() bool { return s.flow != "" || s.query != "" }

// blocks is never called: runPcap streams sources that implement
// pcapStreamer.
func (s *apiSource) blocks(context.Context, *env, *pcapSelection) ([]*block.Block, error) {
	return nil, errors.New("the API source streams; it has no blocks")
}

func (s *apiSource) stream(ctx context.Context, e *env, f pcapio.Format, sel *pcapSelection, w io.Writer) error {
	if s.flow != "" && s.query != "" {
		return fmt.Errorf("%w: give --flow or --query, not both", errUsage)
	}
	c, err := s.srv.client()
	if err != nil {
		return err
	}
	var prog *client.Progress
	var progress func(int64)
	if f, ok := e.stderr.(*os.File); ok && client.IsTerminal(f) {
		prog = client.NewProgress(e.stderr)
		progress = prog.Update
	}
	res, err := c.Pcap(ctx, client.PcapRequest{
		Flow: s.flow, Query: s.query, From: sel.from, To: sel.to, Format: string(f),
		MaxPackets: s.maxPackets, MaxBytes: s.maxBytes, MaxFlows: s.maxFlows, Truncate: s.truncate, Tunnel: sel.tunnel,
	}, w, progress)
	if prog != nil {
		prog.Done()
	}
	if err != nil {
		return err
	}
	if res.Truncated {
		e.log.Warn("capture truncated at a server cap", "packets", res.Packets, "bytes", res.Bytes)
	}
	if x := res.Expired; x != nil {
		// Partial, not failed: what is left is written.
		args := []any{"flows", x.Flows}
		if x.Blocks > 0 {
			args = append(args, "blocks", x.Blocks)
		}
		if !x.From.IsZero() {
			args = append(args, "from", x.From.Format(time.RFC3339Nano), "until", x.Until.Format(time.RFC3339Nano))
		} else {
			args = append(args, "header", x.Raw)
		}
		e.log.Warn("capture incomplete: retention removed some of these packets before the pull", args...)
	}
	e.log.Info("pcap written", "flows", res.Flows, "packets", res.Packets, "bytes", res.Bytes, "format", f)
	return nil
}

// writePcapStream runs a streaming source into the output file (or
// stdout for "-"), removing a partial file on error.
func writePcapStream(ctx context.Context, e *env, out string, f pcapio.Format, sel *pcapSelection, ss pcapStreamer) error {
	if out == "-" {
		return ss.stream(ctx, e, f, sel, e.stdout)
	}
	file, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	err = ss.stream(ctx, e, f, sel, file)
	if cerr := file.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close output: %w", cerr)
	}
	if err != nil {
		os.Remove(out)
	}
	return err
}
