package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
)

// Audit log listing bounds: entries per page by default and at most.
const (
	auditPageDefault = 100
	auditPageMax     = 1000
)

// routeAuditLog registers
//
//	GET /api/v1/audit[?limit=N][&before=CURSOR]   role admin
//
// answering {"entries": [...], "next": CURSOR}: the audit log's entries
// (its JSON lines as written, rotated files included), newest first, at
// most limit (default 100, at most 1000). next, when not empty, is the
// before of the following page: the entries older than this page's
// last. A cursor whose entry has left the log (rotated out) answers an
// empty page. The listing is itself audited (endpoint "audit_log").
func (s *Server) routeAuditLog() {
	s.mux.Handle("GET /api/v1/audit", s.route("audit_log", RoleAdmin, true, s.handleAuditLog))
}

func (s *Server) handleAuditLog(c *call) {
	limit, err := parseLimit(c, auditPageDefault, auditPageMax)
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	var after string
	if b := c.r.URL.Query().Get("before"); b != "" {
		raw, err := base64.RawURLEncoding.DecodeString(b)
		if err != nil || len(raw) != lineIDLen {
			s.fail(c, http.StatusBadRequest, "bad_request", "before is not a cursor this API gave", nil)
			return
		}
		after = hex.EncodeToString(raw)
	}
	entries, next, err := readAuditPage(s.auditFiles(), after, limit)
	if err != nil {
		s.log.Error("read audit log", "err", err)
		s.fail(c, http.StatusInternalServerError, "internal", "cannot read the audit log", nil)
		return
	}
	c.audit.Flows = len(entries)
	s.answerJSON(c, map[string]any{"entries": entries, "next": next})
}

// auditFiles lists the audit log's files newest first: the current one,
// then the rotated ones (.1 newest).
func (s *Server) auditFiles() []string {
	out := []string{s.cfg.AuditFile}
	for i := 1; i <= s.cfg.Audit.Keep; i++ {
		out = append(out, s.cfg.AuditFile+"."+strconv.Itoa(i))
	}
	return out
}

// lineIDLen is the bytes of a line's identity in a cursor (a SHA-256
// prefix: entries hold their time to the nanosecond and their duration,
// so two lines alike are not expected).
const lineIDLen = 12

func lineID(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:lineIDLen])
}

// readAuditPage walks the files' lines newest first, after the line
// whose identity is after (from the newest when empty), and returns up
// to limit entries and the cursor of the last when more follow. Lines
// that are not JSON (a line being written) are skipped.
func readAuditPage(files []string, after string, limit int) ([]json.RawMessage, string, error) {
	entries := []json.RawMessage{}
	skipping := after != ""
	next, last := "", ""
	errFull := errors.New("page full")
	for _, f := range files {
		err := eachLineBackward(f, func(line []byte) error {
			if !json.Valid(line) {
				return nil
			}
			id := lineID(line)
			if skipping {
				skipping = id != after
				return nil
			}
			if len(entries) == limit {
				next = last
				return errFull
			}
			entries = append(entries, json.RawMessage(bytes.Clone(line)))
			last = id
			return nil
		})
		if errors.Is(err, errFull) {
			break
		}
		if err != nil {
			return nil, "", err
		}
	}
	if next == "" {
		return entries, "", nil
	}
	raw, _ := hex.DecodeString(next)
	return entries, base64.RawURLEncoding.EncodeToString(raw), nil
}

// eachLineBackward calls fn for every non-empty line of a file, last
// first, reading it backwards in 64 KiB pieces; a missing file has no
// lines. fn's line is valid only during the call; an error from fn
// stops the walk and is returned.
func eachLineBackward(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open audit file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat audit file: %w", err)
	}
	buf := make([]byte, 64<<10)
	var carry []byte // the start of a line whose end was read already
	for off := st.Size(); off > 0; {
		n := min(off, int64(len(buf)))
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read audit file: %w", err)
		}
		chunk := append(buf[:n:n], carry...) // a new array: buf is reused
		for {
			i := bytes.LastIndexByte(chunk, '\n')
			if i < 0 {
				break
			}
			if line := chunk[i+1:]; len(line) > 0 {
				if err := fn(line); err != nil {
					return err
				}
			}
			chunk = chunk[:i]
		}
		carry = chunk
	}
	if len(carry) > 0 {
		return fn(carry)
	}
	return nil
}
