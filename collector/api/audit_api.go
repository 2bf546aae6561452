package api

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
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
// last, wherever rotation moved them. A cursor whose file has left the
// log (rotated out) answers an empty page. The listing is itself
// audited (endpoint "audit_log").
func (s *Server) routeAuditLog() {
	s.mux.Handle("GET /api/v1/audit", s.route("audit_log", RoleAdmin, true, s.handleAuditLog))
}

func (s *Server) handleAuditLog(c *call) {
	limit, err := parseLimit(c, auditPageDefault, auditPageMax)
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	var cur *auditCursor
	if b := c.r.URL.Query().Get("before"); b != "" {
		if cur, err = parseAuditCursor(b); err != nil {
			s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
			return
		}
	}
	entries, next, err := readAuditPage(s.auditFiles(), cur, limit)
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

// auditCursor is where a page ended: the start of its last line in the
// file of that inode. Rotation renames files, so the inode finds the
// file again, whatever its name now.
type auditCursor struct {
	inode, offset uint64
}

// String encodes the cursor for the next parameter.
func (c auditCursor) String() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], c.inode)
	binary.BigEndian.PutUint64(b[8:], c.offset)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func parseAuditCursor(s string) (*auditCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return nil, errors.New("before is not a cursor this API gave")
	}
	return &auditCursor{inode: binary.BigEndian.Uint64(b), offset: binary.BigEndian.Uint64(b[8:])}, nil
}

// errPageFull ends a page's walk.
var errPageFull = errors.New("page full")

// readAuditPage walks the files' lines newest first, from the line
// before the cursor (from the newest without one), and returns up to
// limit entries and, when more follow, the cursor of the next page. A
// cursor whose file is gone (rotated out) gives an empty page. Lines
// that are not JSON (one being written) are skipped.
func readAuditPage(files []string, cur *auditCursor, limit int) ([]json.RawMessage, string, error) {
	entries := []json.RawMessage{}
	var last auditCursor
	next := ""
	for _, name := range files {
		f, inode, err := openAuditFile(name)
		if err != nil {
			return nil, "", err
		}
		if f == nil || (cur != nil && inode != cur.inode) {
			closeQuietly(f)
			continue
		}
		end := int64(-1)
		if cur != nil {
			end, cur = int64(cur.offset), nil
		}
		err = eachLineBackward(f, end, func(line []byte, off int64) error {
			if !json.Valid(line) {
				return nil
			}
			if len(entries) == limit {
				next = last.String()
				return errPageFull
			}
			entries = append(entries, json.RawMessage(bytes.Clone(line)))
			last = auditCursor{inode: inode, offset: uint64(off)}
			return nil
		})
		closeQuietly(f)
		if errors.Is(err, errPageFull) {
			break
		}
		if err != nil {
			return nil, "", err
		}
	}
	return entries, next, nil
}

// openAuditFile opens one audit file and returns its inode; a missing
// file is nil without error.
func openAuditFile(name string) (*os.File, uint64, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open audit file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat audit file: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		f.Close()
		return nil, 0, errors.New("audit file: no inode")
	}
	return f, sys.Ino, nil
}

func closeQuietly(f *os.File) {
	if f != nil {
		_ = f.Close() // read only
	}
}

// eachLineBackward calls fn for every non-empty line of f that starts
// before end (the whole file when end < 0), last first, with the line's
// offset, reading backwards in 64 KiB pieces. fn's line is valid only
// during the call; an error from fn stops the walk and is returned.
func eachLineBackward(f *os.File, end int64, fn func(line []byte, off int64) error) error {
	if end < 0 {
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat audit file: %w", err)
		}
		end = st.Size()
	}
	buf := make([]byte, 64<<10)
	var carry []byte // the start of a line whose end was read already
	off := end
	for off > 0 {
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
				if err := fn(line, off+int64(i)+1); err != nil {
					return err
				}
			}
			chunk = chunk[:i]
		}
		carry = chunk
	}
	if len(carry) > 0 {
		return fn(carry, 0)
	}
	return nil
}
