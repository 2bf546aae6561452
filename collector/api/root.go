// Package api is the collector's HTTP API for investigators: pull a flow's
// packets as pcap by Community ID or flow ID, pull the packets of every
// flow matching a query, list flow records as ECS JSON lines, and list the
// sensors. Every request is authenticated (bearer token or TLS client
// certificate), authorized by role, and every retrieval is appended to an
// audit log.
//
// # Endpoints
//
//	GET /api/v1/pcap?flow=ID[&from=T&to=T][&format=pcap|pcapng]     role pcap:read
//	GET /api/v1/pcap?query=EXPR[&format=...][&max_flows=N]          role pcap:read
//	    common: [&max_packets=N][&max_bytes=N][&truncate=1]
//	GET /api/v1/flows?query=EXPR[&limit=N][&sort=[-]F][&cursor=C]   role flows:read
//	GET /api/v1/flows/histogram?query=EXPR[&buckets=N]              role flows:read
//	GET /api/v1/flows/top?query=EXPR&by=FIELD[&n=N][&order=O]       role flows:read
//	GET /api/v1/fields                                              role flows:read
//	GET /api/v1/sensors                                             role flows:read
//	GET /api/v1/sensors/{id}/history[?minutes=N]                    role flows:read
//	GET /api/v1/flows/{id}                                          role flows:read
//	GET /api/v1/flows/{id}/packets[?limit=N], .../packets/{n}       role pcap:read
//	GET /api/v1/flows/{id}/stream[?format=json|ascii]               role pcap:read
//	GET /api/v1/audit[?limit=N][&before=CURSOR]                     role admin
//
//	GET /, /console/...                                             no credentials
//
// (search.go, inspect.go, fleet.go and audit_api.go say what these
// answer; / and /console/ serve the web console's embedded assets, see
// collector/console, whose API calls carry the signed-in token.)
//
// ID is a Community ID ("1:...") or a tapir flow ID (32 hex digits). T is
// a time as the query language writes it (RFC 3339, unix seconds, "5m
// ago"). Roles are flows:read, pcap:read and admin (all of them).
//
// # pcap answers
//
//	200  the packets, merged from every sensor in timestamp order, as
//	     classic pcap (nanosecond) or pcapng (one interface per sensor and
//	     capture interface). Headers: X-Tapir-Flows (flows merged),
//	     X-Tapir-Truncated: true when a cap cut the answer (truncate=1).
//	     Trailers: X-Tapir-Complete (true when every selected packet was
//	     sent), X-Tapir-Packets, X-Tapir-Bytes (captured bytes sent).
//	400  bad parameters or query syntax (code "bad_request"), among them a
//	     flow that is not a well-formed Community ID or flow ID.
//	401  no or unknown credentials; 403 a role is missing.
//	404  code "flow_unknown": no flow has that ID.
//	404  code "no_packets_in_window": the flow has packets, none between
//	     from and to (from and to cut per packet, both inclusive).
//	404  code "not_flushed": the flow is indexed but none of its packets is
//	     stored yet (the sensor still holds its open block, or the flow
//	     stored no packet); Retry-After says when to ask again.
//	410  code "packets_expired": retention removed the flow's packets.
//	413  code "cap_exceeded": the answer would exceed max_packets,
//	     max_bytes or max_flows (after lowering by the request); repeat
//	     with truncate=1 to get the first packets up to the cap instead.
//	422  code "query_too_costly" (window or complexity over the limits) or
//	     "link_types" (classic pcap cannot hold several link types: ask
//	     for pcapng).
//	429  code "rate_limited": this source's denied requests passed
//	     audit.denied_rate (401 and 403 answers).
//	500  code "corrupt": the store holds a damaged copy of the flow's
//	     rows (checksum mismatch); the message names the flow.
//	503  code "busy": max_concurrent retrievals are running.
//	503  code "audit_unavailable": the audit log cannot be written.
//	504  code "timeout": the request timed out before streaming began.
//
// A stream that fails after it started (timeout, storage error) ends
// early with the trailer X-Tapir-Complete: false.
//
// # Audit
//
// Every pcap and flows request, allowed or denied, is appended to the
// audit file as one JSON line (AuditEntry) after it is served. The log is
// bounded: flow and query parameters are cut to audit.max_param_bytes
// (with the full length and a SHA-256 prefix), the file rotates at
// audit.max_bytes keeping audit.keep files, and denied requests (401,
// 403) are audited at most audit.denied_rate per second per source IP
// (bursts of audit.denied_burst); past that a source is answered
// 429 "rate_limited", counted in tapir_api_denied_rate_limited_total and
// in the suppressed_denials field of its next audited entry.
//
// Retrieval fails closed: while the audit log cannot be written (its file
// system has less than audit.min_free_bytes free, or the last write
// failed and the file cannot yet be reopened and written: recovery writes
// a synced entry of endpoint "audit"), pcap and flows requests
// are answered 503 "audit_unavailable" before anything is read or sent
// (unless audit.fail_open). A failed write is counted
// (tapir_api_audit_errors_total) and logged, rate limited, without the
// request's parameters.
package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/collector/console"
	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/internal/lograte"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/storage"
)

// SensorLister lists the sensor fleet (collector/registry.Registry).
type SensorLister interface {
	Sensors() []registry.SensorStatus
}

// Dependencies are what the API needs from the rest of the collector.
type Dependencies struct {
	Store   storage.Reader // required
	Sensors SensorLister   // optional: without it /api/v1/sensors answers an empty list
	Logger  *slog.Logger   // optional
	// Registerer receives the tapir_api_* metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now returns the current time (default time.Now); tests fix it.
	Now func() time.Time
	// Records answers GET /api/v1/flows when search.backend is
	// opensearch (required then, unused otherwise).
	Records RecordSearcher
}

// Server is the API component. New is inert; Start loads the tokens file,
// opens the audit log and listens; Stop shuts down and waits. Its methods
// are safe for concurrent use.
type Server struct {
	cfg  Config
	deps Dependencies
	log  *slog.Logger
	m    *metrics
	sem  chan struct{}
	mux  *http.ServeMux
	// deny limits the denied requests audited per source.
	deny *denyLimiter
	// refuseLog rate-limits the log line of retrievals refused because
	// the audit log cannot be written.
	refuseLog *lograte.Limiter

	mu      sync.Mutex
	auth    *authenticator
	audit   *auditLog
	bufs    writeBufs // the pcap answers' write buffers
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
	serr    error
	stopped bool
}

// New validates the configuration and builds the server without starting
// anything.
func New(cfg Config, deps Dependencies) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, fmt.Errorf("%w: no store", ErrConfig)
	}
	if cfg.Search.Backend == BackendOpenSearch && deps.Records == nil {
		return nil, fmt.Errorf("%w: search.backend opensearch without an opensearch searcher", ErrConfig)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register api metrics: %w", err)
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, m: m, sem: make(chan struct{}, cfg.MaxConcurrent),
		deny: newDenyLimiter(cfg.Audit.DeniedRate, cfg.Audit.DeniedBurst), refuseLog: lograte.New(10 * time.Second)}
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /api/v1/pcap", s.route("pcap", RolePcapRead, true, s.handlePcap))
	s.mux.Handle("GET /api/v1/flows", s.route("flows", RoleFlowsRead, true, s.handleFlows))
	s.mux.Handle("GET /api/v1/sensors", s.route("sensors", RoleFlowsRead, false, s.handleSensors))
	console.Mount(s.mux) // the web console's static assets (no credentials; its API calls carry the token)
	s.routeInspect()
	s.routeFleet()
	s.routeAuditLog()
	s.registerSearch()
	return s, nil
}

// ReloadTokens re-reads the tokens file (SIGHUP in tapir-collector): new
// requests see the new tokens at once, requests in flight keep theirs. On
// error the previous tokens stay in force. Safe for concurrent use; an
// error before Start.
func (s *Server) ReloadTokens() error {
	s.mu.Lock()
	auth := s.auth
	s.mu.Unlock()
	if auth == nil {
		return errors.New("api: reload tokens: not started")
	}
	if s.cfg.TokensFile == "" {
		return nil
	}
	t, err := LoadTokens(s.cfg.TokensFile)
	if err != nil {
		return fmt.Errorf("reload tokens: %w", err)
	}
	auth.tokens.Store(t)
	s.log.Info("api tokens reloaded", "file", s.cfg.TokensFile, "tokens", len(t.recs))
	return nil
}

// Start loads the tokens file, opens the audit log and starts serving.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil || s.stopped {
		return errors.New("api: already started")
	}
	auth := &authenticator{certRoles: s.cfg.CertRoles}
	if s.cfg.TokensFile != "" {
		t, err := LoadTokens(s.cfg.TokensFile)
		if err != nil {
			return err
		}
		auth.tokens.Store(t)
	}
	var tlsCfg *tls.Config
	if !s.cfg.TLS.Insecure {
		c, err := tlsconfig.Server(s.cfg.TLS)
		if err != nil {
			return fmt.Errorf("api tls: %w", err)
		}
		if !s.cfg.RequireClientCert {
			c.ClientAuth = tls.VerifyClientCertIfGiven
		}
		tlsCfg = c
	}
	audit, err := openAudit(s.cfg.AuditFile, s.cfg.AuditSync, s.cfg.Audit, s.log, s.m)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		audit.Close()
		return fmt.Errorf("api listen: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.auth, s.audit, s.ln = auth, audit, ln
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      s.cfg.RequestTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan struct{})
	srv, done := s.srv, s.done
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
			s.mu.Lock()
			s.serr = err
			s.mu.Unlock()
		}
	}()
	s.log.Info("api listening", "addr", ln.Addr().String(), "tls", tlsCfg != nil)
	return nil
}

// Addr returns the listening address (after Start), e.g. to learn the
// port of "127.0.0.1:0".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop stops accepting requests, waits up to 10 s for running ones,
// then closes the audit log. It is idempotent.
func (s *Server) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	srv, done, audit := s.srv, s.done, s.audit
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	<-done
	if cerr := audit.Close(); err == nil {
		err = cerr
	}
	s.mu.Lock()
	if err == nil {
		err = s.serr
	}
	s.mu.Unlock()
	return err
}

// call is one request being served.
type call struct {
	w     *respWriter
	r     *http.Request
	ctx   context.Context
	p     *Principal
	audit AuditEntry
	start time.Time
	// unaudited: a rate-limited denial, counted instead of audited.
	unaudited bool
}

// route wraps a handler with authentication, authorization, the
// concurrency limit, the request timeout, metrics and the audit log.
func (s *Server) route(endpoint string, role Role, audited bool, h func(*call)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: &respWriter{ResponseWriter: w}, r: r, start: time.Now()}
		c.audit = AuditEntry{Time: s.deps.Now().UTC(), Remote: r.RemoteAddr, Endpoint: endpoint}
		if audited {
			// Denied requests are audited with what they asked for.
			v := r.URL.Query()
			fl := v.Get("flow")
			if fl == "" {
				fl = r.PathValue("id") // /api/v1/flows/{id}/...
			}
			c.audit.setParams(fl, v.Get("query"), s.cfg.Audit.MaxParamBytes)
		}
		defer func() {
			d := time.Since(c.start)
			code := c.w.code()
			s.m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
			s.m.sentBytes.WithLabelValues(endpoint).Add(float64(c.w.n))
			if audited && !c.unaudited {
				c.audit.Status = code
				c.audit.Bytes = c.w.n
				c.audit.DurationMS = float64(d.Microseconds()) / 1000
				_ = s.audit.Write(&c.audit) // failures are counted and logged by the audit log
			}
		}()
		p, err := s.auth.authenticate(r)
		if err != nil {
			if s.denyLimited(c, audited) {
				return
			}
			c.audit.Error = err.Error()
			w.Header().Set("WWW-Authenticate", `Bearer realm="tapir"`)
			s.fail(c, http.StatusUnauthorized, "unauthenticated", "missing or invalid credentials", nil)
			return
		}
		c.p = p
		c.audit.Subject, c.audit.AuthMethod = p.Subject, p.Method
		if !p.Has(role) {
			if s.denyLimited(c, audited) {
				return
			}
			s.fail(c, http.StatusForbidden, "forbidden", "role "+string(role)+" required", nil)
			return
		}
		if audited {
			select {
			case s.sem <- struct{}{}:
				defer func() { <-s.sem }()
			default:
				s.m.busy.Inc()
				w.Header().Set("Retry-After", "5")
				s.fail(c, http.StatusServiceUnavailable, "busy", "too many concurrent retrievals", nil)
				return
			}
			if !s.auditReady(c) {
				return
			}
			s.m.inflight.Inc()
			defer s.m.inflight.Dec()
			defer func() { s.m.latency.WithLabelValues(endpoint).Observe(time.Since(c.start).Seconds()) }()
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		c.ctx = ctx
		h(c)
	})
}

// denyLimited spends a token of the request's source for an audited
// denial. Out of tokens, it answers 429 without an audit entry (counted,
// and reported in the source's next audited entry) and returns true.
func (s *Server) denyLimited(c *call, audited bool) bool {
	if !audited {
		return false
	}
	ok, suppressed := s.deny.take(sourceOf(c.r.RemoteAddr), time.Now())
	if ok {
		c.audit.SuppressedDenials = suppressed
		return false
	}
	c.unaudited = true
	s.m.deniedLimited.Inc()
	c.w.Header().Set("Retry-After", strconv.Itoa(int(max(1, 1/s.cfg.Audit.DeniedRate))))
	s.fail(c, http.StatusTooManyRequests, "rate_limited", "too many denied requests from this source", nil)
	return true
}

// auditReady checks the audit log can take this retrieval's entry. If it
// cannot, the retrieval is refused 503 (fail closed) unless
// audit.fail_open, and false is returned.
func (s *Server) auditReady(c *call) bool {
	err := s.audit.Ready()
	if err == nil {
		return true
	}
	if s.cfg.Audit.FailOpen {
		if n, ok := s.refuseLog.Allow(); ok {
			s.log.Error("audit log unavailable; serving anyway (audit.fail_open)", "err", err, "not_logged", n)
		}
		return true
	}
	s.m.auditRefused.Inc()
	if n, ok := s.refuseLog.Allow(); ok {
		s.log.Error("audit log unavailable; retrievals refused", "err", err, "refusals_not_logged", n)
	}
	c.w.Header().Set("Retry-After", "30")
	s.fail(c, http.StatusServiceUnavailable, "audit_unavailable",
		"the audit log cannot be written; retrievals are refused until it can", nil)
	return false
}

// fail answers a JSON error {"error": msg, "code": code, ...extra} and
// records it in the audit entry.
func (s *Server) fail(c *call, status int, code, msg string, extra map[string]any) {
	if c.audit.Error == "" {
		c.audit.Error = msg
	}
	if c.w.started {
		return // too late for a status; the trailer says incomplete
	}
	body := map[string]any{"error": msg, "code": code}
	for k, v := range extra {
		body[k] = v
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.WriteHeader(status)
	s.writeJSON(c, body)
}

// writeJSON encodes v as the response body. A write error (the client
// gone) is recorded in the request's audit entry unless it already
// holds an error.
func (s *Server) writeJSON(c *call, v any) {
	if err := json.NewEncoder(c.w).Encode(v); err != nil && c.audit.Error == "" {
		c.audit.Error = fmt.Sprintf("write response: %v", err)
	}
}

// respWriter records the status and counts body bytes.
type respWriter struct {
	http.ResponseWriter
	status  int
	started bool
	n       int64
}

func (w *respWriter) WriteHeader(code int) {
	if w.started {
		return
	}
	w.started, w.status = true, code
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *respWriter) code() int {
	if !w.started {
		return http.StatusOK
	}
	return w.status
}

// Flush sends buffered data to the client.
func (w *respWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
