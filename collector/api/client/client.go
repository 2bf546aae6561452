// Package client is the HTTP client of the collector's API (package
// collector/api), used by the tapir CLI: pull a pcap by flow or query,
// list flow records, list sensors. A Client is safe for concurrent use.
package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// Config says where the API is and how to authenticate.
type Config struct {
	// Server is the API's base URL ("https://collector:8443"); a bare
	// host:port means https.
	Server string
	// Token is the bearer token ("" for none).
	Token string
	// CAFile verifies the server; empty uses the system roots.
	CAFile string
	// CertFile and KeyFile are an optional client certificate.
	CertFile, KeyFile string
	// Timeout bounds one request (0: none, for large pulls).
	Timeout time.Duration
}

// Client calls the API.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string // e.g. "flow_unknown", "packets_expired", "cap_exceeded"
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("server answered %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// ErrNoServer: no server address was given.
var ErrNoServer = errors.New("client: no server address (--server or TAPIR_SERVER)")

// New builds a client. It reads the CA and certificate files.
func New(cfg Config) (*Client, error) {
	if cfg.Server == "" {
		return nil, ErrNoServer
	}
	s := cfg.Server
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("server address: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pool, err := tlsconfig.CAPool(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &Client{base: u, token: cfg.Token, http: &http.Client{Transport: tr, Timeout: cfg.Timeout}}, nil
}

// ReadToken returns the token from a file (first line, trimmed), or the
// fallback (e.g. $TAPIR_TOKEN) when file is empty.
func ReadToken(file, fallback string) (string, error) {
	if file == "" {
		return strings.TrimSpace(fallback), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line), nil
}

func (c *Client) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		e := &APIError{Status: resp.StatusCode}
		var body struct{ Error, Code string }
		if json.Unmarshal(b, &body) == nil && body.Error != "" {
			e.Code, e.Message = body.Code, body.Error
		} else {
			e.Message = strings.TrimSpace(string(b))
		}
		return nil, e
	}
	return resp, nil
}

// PcapRequest selects what to pull: Flow (Community ID or flow ID) or
// Query, exactly one.
type PcapRequest struct {
	Flow, Query string
	From, To    string // optional times for Flow, as the API parses them
	Format      string // "pcap" (default) or "pcapng"
	MaxPackets  int64  // 0: server's cap
	MaxBytes    int64
	MaxFlows    int
	Truncate    bool // accept an answer cut at a cap instead of 413
	Tunnel      bool // a tunnel's flow: every packet of the tunnel (tunnel=1)
}

// PcapResult describes a pulled capture.
type PcapResult struct {
	Bytes     int64 // body bytes written
	Packets   int64 // from the X-Tapir-Packets trailer (-1 if absent)
	Flows     int
	Truncated bool // a cap cut the answer
	Complete  bool // the server sent every selected packet it still holds
	// Expired is set when retention removed some of the selected packets
	// before the pull (header X-Tapir-Packets-Expired): the capture is
	// partial. Nil when nothing is known to be missing.
	Expired *Expired
}

// Expired is what a partial capture lacks: flow instances missing
// packets, blocks removed from them (0: not known), and the span
// [From, Until) holding every missing packet. Raw is the header as sent.
type Expired struct {
	Flows       int
	Blocks      int64
	From, Until time.Time
	Raw         string
}

// ParseExpired parses an X-Tapir-Packets-Expired header value
// ("flows=N; blocks=N; from=T; until=T"). Unknown keys are ignored, so
// that the server may add some.
func ParseExpired(v string) (*Expired, error) {
	e := &Expired{Raw: v}
	for _, kv := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("packets expired header %q: %q is not key=value", v, kv)
		}
		var err error
		switch k {
		case "flows":
			e.Flows, err = strconv.Atoi(val)
		case "blocks":
			e.Blocks, err = strconv.ParseInt(val, 10, 64)
		case "from":
			e.From, err = time.Parse(time.RFC3339Nano, val)
		case "until":
			e.Until, err = time.Parse(time.RFC3339Nano, val)
		}
		if err != nil {
			return nil, fmt.Errorf("packets expired header %q: %s: %w", v, k, err)
		}
	}
	return e, nil
}

// Pcap streams the capture into w. progress, if not nil, is called with
// the bytes received so far as they arrive.
func (c *Client) Pcap(ctx context.Context, r PcapRequest, w io.Writer, progress func(int64)) (PcapResult, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("flow", r.Flow)
	set("query", r.Query)
	set("from", r.From)
	set("to", r.To)
	set("format", r.Format)
	if r.MaxPackets > 0 {
		q.Set("max_packets", strconv.FormatInt(r.MaxPackets, 10))
	}
	if r.MaxBytes > 0 {
		q.Set("max_bytes", strconv.FormatInt(r.MaxBytes, 10))
	}
	if r.MaxFlows > 0 {
		q.Set("max_flows", strconv.Itoa(r.MaxFlows))
	}
	if r.Truncate {
		q.Set("truncate", "1")
	}
	if r.Tunnel {
		q.Set("tunnel", "1")
	}
	res := PcapResult{Packets: -1}
	resp, err := c.get(ctx, "/api/v1/pcap", q)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	res.Flows, _ = strconv.Atoi(resp.Header.Get("X-Tapir-Flows"))
	res.Truncated = resp.Header.Get("X-Tapir-Truncated") == "true"
	if h := resp.Header.Get("X-Tapir-Packets-Expired"); h != "" {
		if res.Expired, err = ParseExpired(h); err != nil {
			// Still a partial capture: keep the raw header.
			res.Expired = &Expired{Raw: h}
		}
	}
	dst := w
	if progress != nil {
		dst = &progressWriter{w: w, fn: progress}
	}
	res.Bytes, err = io.Copy(dst, resp.Body)
	if err != nil {
		return res, fmt.Errorf("receive pcap: %w", err)
	}
	if p := resp.Trailer.Get("X-Tapir-Packets"); p != "" {
		res.Packets, _ = strconv.ParseInt(p, 10, 64)
	}
	res.Complete = resp.Trailer.Get("X-Tapir-Complete") == "true"
	if !res.Complete && !res.Truncated {
		return res, errors.New("the server ended the capture early (X-Tapir-Complete is not true)")
	}
	return res, nil
}

type progressWriter struct {
	w  io.Writer
	n  int64
	fn func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.fn(p.n)
	return n, err
}

// Flows calls fn with every flow record (one ECS JSON document) matching
// the query, at most limit (0: server default). It reports whether more
// records matched than were sent.
func (c *Client) Flows(ctx context.Context, query string, limit int, fn func(json.RawMessage) error) (more bool, err error) {
	q := url.Values{}
	if query != "" {
		q.Set("query", query)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	resp, err := c.get(ctx, "/api/v1/flows", q)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if err := readFlows(resp, fn); err != nil {
		return false, err
	}
	return resp.Trailer.Get("X-Tapir-More") == "true", nil
}

// readFlows calls fn with every flow record of a flow list answer (JSON
// lines), then checks that the server sent the whole list.
func readFlows(resp *http.Response, fn func(json.RawMessage) error) error {
	dec := json.NewDecoder(resp.Body)
	for {
		var m json.RawMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("read flows: %w", err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	if resp.Trailer.Get("X-Tapir-Complete") != "true" {
		return errors.New("the server ended the flow list early")
	}
	return nil
}

// Sensors lists the collector's sensors.
func (c *Client) Sensors(ctx context.Context) ([]registry.SensorStatus, error) {
	resp, err := c.get(ctx, "/api/v1/sensors", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []registry.SensorStatus
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("read sensors: %w", err)
	}
	return out, nil
}
