package appmeta

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
)

// errNeedMore says that a message continues beyond the bytes at hand.
var errNeedMore = errors.New("appmeta: need more data")

// TLS extension numbers used here.
const (
	extServerName        = 0x0000
	extSupportedGroups   = 0x000a
	extECPointFormats    = 0x000b
	extSignatureAlgs     = 0x000d
	extALPN              = 0x0010
	extSupportedVersions = 0x002b
)

// TLS handshake message types.
const (
	hsClientHello = 1
	hsServerHello = 2
)

// ClientHello holds the fields of a TLS ClientHello that metadata and
// fingerprints need. Lists keep the wire order and GREASE values; the
// fingerprint methods drop GREASE. Parse into a reused ClientHello to
// reuse its slices; SNI and ALPN alias the parsed bytes.
type ClientHello struct {
	LegacyVersion uint16
	Ciphers       []uint16
	Extensions    []uint16
	Groups        []uint16
	PointFormats  []uint8
	SigAlgs       []uint16
	Versions      []uint16 // supported_versions
	SNI           []byte
	ALPN          [][]byte
	HasSNI        bool
}

func (h *ClientHello) reset() {
	*h = ClientHello{Ciphers: h.Ciphers[:0], Extensions: h.Extensions[:0], Groups: h.Groups[:0],
		PointFormats: h.PointFormats[:0], SigAlgs: h.SigAlgs[:0], Versions: h.Versions[:0], ALPN: h.ALPN[:0]}
}

// isGREASE reports a GREASE value (RFC 8701): 0x?a?a with equal bytes.
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// reader is a bounds-checked big-endian cursor.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() uint8 {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if len(r.b) < 2 {
		r.bad = true
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// ParseClientHello parses the body of a ClientHello handshake message
// (after its 4-byte handshake header) into h.
func ParseClientHello(body []byte, h *ClientHello) error {
	h.reset()
	r := reader{b: body}
	h.LegacyVersion = r.u16()
	r.bytes(32)
	r.bytes(int(r.u8()))
	cs := reader{b: r.bytes(int(r.u16()))}
	for len(cs.b) >= 2 {
		h.Ciphers = append(h.Ciphers, cs.u16())
	}
	r.bytes(int(r.u8()))
	if r.bad || len(cs.b) != 0 {
		return ErrMalformed
	}
	if len(r.b) == 0 {
		return nil // no extensions (SSL 3.0 style)
	}
	exts := reader{b: r.bytes(int(r.u16()))}
	if r.bad {
		return ErrMalformed
	}
	for len(exts.b) > 0 {
		typ := exts.u16()
		data := exts.bytes(int(exts.u16()))
		if exts.bad {
			return ErrMalformed
		}
		h.Extensions = append(h.Extensions, typ)
		e := reader{b: data}
		switch typ {
		case extServerName:
			h.HasSNI = true
			list := reader{b: e.bytes(int(e.u16()))}
			for len(list.b) > 0 && !list.bad {
				nt := list.u8()
				name := list.bytes(int(list.u16()))
				if nt == 0 && h.SNI == nil {
					h.SNI = name
				}
			}
		case extALPN:
			list := reader{b: e.bytes(int(e.u16()))}
			for len(list.b) > 0 && !list.bad {
				p := list.bytes(int(list.u8()))
				if !list.bad && len(h.ALPN) < 16 {
					h.ALPN = append(h.ALPN, p)
				}
			}
		case extSupportedGroups:
			list := reader{b: e.bytes(int(e.u16()))}
			for len(list.b) >= 2 {
				h.Groups = append(h.Groups, list.u16())
			}
		case extECPointFormats:
			h.PointFormats = append(h.PointFormats, e.bytes(int(e.u8()))...)
		case extSignatureAlgs:
			list := reader{b: e.bytes(int(e.u16()))}
			for len(list.b) >= 2 {
				h.SigAlgs = append(h.SigAlgs, list.u16())
			}
		case extSupportedVersions:
			list := reader{b: e.bytes(int(e.u8()))}
			for len(list.b) >= 2 {
				h.Versions = append(h.Versions, list.u16())
			}
		}
	}
	return nil
}

// MaxVersion is the highest non-GREASE version offered in
// supported_versions, else the legacy version.
func (h *ClientHello) MaxVersion() uint16 {
	var v uint16
	for _, x := range h.Versions {
		if !isGREASE(x) && x > v {
			v = x
		}
	}
	if v == 0 {
		v = h.LegacyVersion
	}
	return v
}

func ja4Version(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func twoDigits(n int) string {
	n = min(n, 99)
	return string([]byte{byte('0' + n/10), byte('0' + n%10)})
}

// hash12 is the first 12 hex digits of the SHA-256 of s, or twelve zeros
// for an empty list, as JA4 defines.
func hash12(s []byte) string {
	if len(s) == 0 {
		return "000000000000"
	}
	sum := sha256.Sum256(s)
	return hex.EncodeToString(sum[:6])
}

func appendHex4(b []byte, v uint16) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf])
}

// JA4 returns the JA4 client fingerprint (FoxIO JA4 specification):
// transport (t TCP, q QUIC), highest offered version, SNI present (d) or
// not (i), cipher and extension counts (GREASE dropped), first and last
// character of the first ALPN value, then the truncated SHA-256 of the
// sorted cipher list and of the sorted extension list (SNI and ALPN
// dropped) followed by the signature algorithms in wire order.
func (h *ClientHello) JA4(quic bool) string {
	out := make([]byte, 0, 36)
	if quic {
		out = append(out, 'q')
	} else {
		out = append(out, 't')
	}
	out = append(out, ja4Version(h.MaxVersion())...)
	if h.HasSNI {
		out = append(out, 'd')
	} else {
		out = append(out, 'i')
	}
	var ciphers, exts []uint16
	for _, c := range h.Ciphers {
		if !isGREASE(c) {
			ciphers = append(ciphers, c)
		}
	}
	nExt := 0
	for _, e := range h.Extensions {
		if isGREASE(e) {
			continue
		}
		nExt++
		if e != extServerName && e != extALPN {
			exts = append(exts, e)
		}
	}
	out = append(out, twoDigits(len(ciphers))...)
	out = append(out, twoDigits(nExt)...)
	if len(h.ALPN) == 0 || len(h.ALPN[0]) == 0 {
		out = append(out, "00"...)
	} else if a := h.ALPN[0]; isAlnum(a[0]) && isAlnum(a[len(a)-1]) {
		out = append(out, a[0], a[len(a)-1])
	} else {
		x := hex.EncodeToString(a)
		out = append(out, x[0], x[len(x)-1])
	}
	slices.Sort(ciphers)
	slices.Sort(exts)
	var buf []byte
	for i, c := range ciphers {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendHex4(buf, c)
	}
	out = append(out, '_')
	out = append(out, hash12(buf)...)
	buf = buf[:0]
	for i, e := range exts {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendHex4(buf, e)
	}
	if len(buf) > 0 && len(h.SigAlgs) > 0 {
		buf = append(buf, '_')
		for i, s := range h.SigAlgs {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendHex4(buf, s)
		}
	}
	out = append(out, '_')
	out = append(out, hash12(buf)...)
	return string(out)
}

// JA3String returns the JA3 input: legacy version, ciphers, extensions,
// groups and point formats in decimal, GREASE dropped.
func (h *ClientHello) JA3String() string {
	b := strconv.AppendUint(nil, uint64(h.LegacyVersion), 10)
	list := func(vs []uint16) {
		b = append(b, ',')
		first := true
		for _, v := range vs {
			if isGREASE(v) {
				continue
			}
			if !first {
				b = append(b, '-')
			}
			first = false
			b = strconv.AppendUint(b, uint64(v), 10)
		}
	}
	list(h.Ciphers)
	list(h.Extensions)
	list(h.Groups)
	b = append(b, ',')
	for i, p := range h.PointFormats {
		if i > 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, uint64(p), 10)
	}
	return string(b)
}

// JA3 returns the JA3 fingerprint: the MD5 of JA3String, in hex.
func (h *ClientHello) JA3() string {
	sum := md5.Sum([]byte(h.JA3String()))
	return hex.EncodeToString(sum[:])
}

// ServerHello holds what the metadata needs of a TLS ServerHello.
type ServerHello struct {
	LegacyVersion uint16
	Version       uint16 // supported_versions selection, else LegacyVersion
	Cipher        uint16
	ALPN          []byte // the protocol the server chose (TLS 1.2 and below; aliases body)
}

// ParseServerHello parses the body of a ServerHello handshake message.
func ParseServerHello(body []byte, s *ServerHello) error {
	*s = ServerHello{}
	r := reader{b: body}
	s.LegacyVersion = r.u16()
	s.Version = s.LegacyVersion
	r.bytes(32)
	r.bytes(int(r.u8()))
	s.Cipher = r.u16()
	r.u8()
	if r.bad {
		return ErrMalformed
	}
	if len(r.b) == 0 {
		return nil
	}
	exts := reader{b: r.bytes(int(r.u16()))}
	for len(exts.b) > 0 && !exts.bad {
		typ := exts.u16()
		data := exts.bytes(int(exts.u16()))
		switch {
		case typ == extSupportedVersions && len(data) == 2:
			s.Version = binary.BigEndian.Uint16(data)
		case typ == extALPN:
			e := reader{b: data}
			list := reader{b: e.bytes(int(e.u16()))}
			if p := list.bytes(int(list.u8())); !list.bad {
				s.ALPN = p
			}
		}
	}
	if r.bad || exts.bad {
		return ErrMalformed
	}
	return nil
}

// maxHandshake bounds the handshake message reassembled from records.
const maxHandshake = 64 << 10

// firstHandshake finds the first handshake message in a TLS record
// stream: its type and body. The body aliases data when the message fits
// in the first record, else it is gathered into *scratch. It returns
// errNeedMore when data ends before the message does, ErrNotHello when
// data is not a TLS handshake record stream.
func firstHandshake(data []byte, scratch *[]byte) (uint8, []byte, error) {
	gathered := (*scratch)[:0]
	defer func() { *scratch = gathered[:0] }()
	off := 0
	for {
		if len(data)-off < 5 {
			return 0, nil, errNeedMore
		}
		if data[off] != 22 || data[off+1] != 3 {
			return 0, nil, ErrNotHello
		}
		rl := int(binary.BigEndian.Uint16(data[off+3:]))
		if rl == 0 || rl > 1<<14+2048 {
			return 0, nil, ErrNotHello
		}
		frag := data[off+5 : min(len(data), off+5+rl)]
		if off == 0 && len(frag) >= 4 {
			n := int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3])
			if n > maxHandshake {
				return 0, nil, ErrMalformed
			}
			if 4+n <= len(frag) {
				return frag[0], frag[4 : 4+n], nil
			}
		}
		gathered = append(gathered, frag...)
		if len(gathered) >= 4 {
			n := int(gathered[1])<<16 | int(gathered[2])<<8 | int(gathered[3])
			if n > maxHandshake {
				return 0, nil, ErrMalformed
			}
			if 4+n <= len(gathered) {
				return gathered[0], gathered[4 : 4+n], nil
			}
		}
		if off+5+rl > len(data) {
			return 0, nil, errNeedMore
		}
		off += 5 + rl
	}
}
