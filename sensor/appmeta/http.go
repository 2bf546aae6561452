package appmeta

import (
	"bytes"

	"github.com/tapir-sensor/tapir/flow"
)

// maxField bounds each HTTP and SSH string kept in metadata.
const maxField = 1024

var httpMethods = [...]string{"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "CONNECT ", "PATCH ", "TRACE "}

// isHTTPRequest reports whether b starts like an HTTP/1.x request line.
func isHTTPRequest(b []byte) bool {
	for _, m := range httpMethods {
		if len(b) >= len(m) && string(b[:len(m)]) == m {
			return true
		}
		if len(b) < len(m) && len(b) > 0 && string(b) == m[:len(b)] {
			return true
		}
	}
	return false
}

// isHTTPResponse reports whether b starts like an HTTP/1.x status line.
func isHTTPResponse(b []byte) bool {
	const p = "HTTP/1."
	n := min(len(b), len(p))
	return n > 0 && string(b[:n]) == p[:n]
}

// headEnd returns the length of the HTTP head (through the blank line), or
// -1 when it is not complete.
func headEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		return i + 2
	}
	return -1
}

func clip(b []byte) string {
	if len(b) > maxField {
		b = b[:maxField]
	}
	return string(b)
}

// nextLine splits off the first line of b (without CR LF).
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil, false
	}
	line = b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, b[i+1:], true
}

// header returns the name and value of a header line, the value trimmed.
func header(line []byte) (name, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, false
	}
	return line[:i], bytes.TrimSpace(line[i+1:]), true
}

// ParseHTTPRequest parses an HTTP/1.x request head (the request line and
// the complete header lines present in b) into m: method, URI, Host and
// User-Agent.
func ParseHTTPRequest(b []byte, m *flow.HTTPMeta) error {
	line, rest, ok := nextLine(b)
	if !ok {
		return ErrShort
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return ErrMalformed
	}
	uri := line[sp1+1:]
	if sp2 := bytes.LastIndexByte(uri, ' '); sp2 >= 0 && bytes.HasPrefix(uri[sp2+1:], []byte("HTTP/")) {
		uri = uri[:sp2]
	} // else an HTTP/0.9 simple request: "GET /"
	if len(uri) == 0 {
		return ErrMalformed
	}
	m.Method = clip(line[:sp1])
	m.URI = clip(uri)
	for {
		line, rest, ok = nextLine(rest)
		if !ok || len(line) == 0 {
			return nil
		}
		name, value, ok := header(line)
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("Host")) && m.Host == "":
			m.Host = clip(value)
		case bytes.EqualFold(name, []byte("User-Agent")) && m.UserAgent == "":
			m.UserAgent = clip(value)
		}
	}
}

// ParseHTTPResponse parses an HTTP/1.x response head into m: status code
// and Content-Type.
func ParseHTTPResponse(b []byte, m *flow.HTTPMeta) error {
	line, rest, ok := nextLine(b)
	if !ok {
		return ErrShort
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.")) || len(line) < 12 || line[8] != ' ' {
		return ErrMalformed
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return ErrMalformed
		}
		code = code*10 + int(c-'0')
	}
	m.StatusCode = code
	for {
		line, rest, ok = nextLine(rest)
		if !ok || len(line) == 0 {
			return nil
		}
		if name, value, ok := header(line); ok && bytes.EqualFold(name, []byte("Content-Type")) && m.ContentType == "" {
			m.ContentType = clip(value)
		}
	}
}

// ParseSSHIdent returns the SSH identification string ("SSH-2.0-...")
// found at the start of a line in b, without CR LF. Lines before it
// (allowed by RFC 4253 from servers) are skipped. It returns errNeedMore
// when no complete identification line is in b yet.
func ParseSSHIdent(b []byte) (string, error) {
	for len(b) > 0 {
		line, rest, ok := nextLine(b)
		if bytes.HasPrefix(line, []byte("SSH-")) {
			if !ok {
				if len(line) > 255 {
					return clip(line), nil
				}
				return "", errNeedMore
			}
			return clip(line), nil
		}
		if !ok {
			if len(line) > 255 {
				return "", ErrMalformed
			}
			return "", errNeedMore
		}
		b = rest
	}
	return "", errNeedMore
}
