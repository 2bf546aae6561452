package flow

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
)

// Community ID v1 (https://github.com/corelight/community-id-spec).

// icmpPairs maps ICMP message types that form request/reply pairs to their
// counterpart, as the Community ID spec does.
var icmpPairs = [256]int16{}

// icmp6Pairs is icmpPairs for ICMPv6.
var icmp6Pairs = [256]int16{}

func init() {
	for i := range icmpPairs {
		icmpPairs[i], icmp6Pairs[i] = -1, -1
	}
	pair := func(t *[256]int16, a, b int16) { t[a], t[b] = b, a }
	pair(&icmpPairs, 8, 0)   // echo / echo reply
	pair(&icmpPairs, 13, 14) // timestamp / reply
	pair(&icmpPairs, 15, 16) // information / reply
	pair(&icmpPairs, 10, 9)  // router solicitation / advertisement
	pair(&icmpPairs, 17, 18) // address mask / reply

	pair(&icmp6Pairs, 128, 129) // echo / echo reply
	pair(&icmp6Pairs, 130, 131) // MLD query / report
	pair(&icmp6Pairs, 133, 134) // router solicitation / advertisement
	pair(&icmp6Pairs, 135, 136) // neighbor solicitation / advertisement
	pair(&icmp6Pairs, 139, 140) // node information query / reply
	pair(&icmp6Pairs, 144, 145) // home agent address discovery request / reply
}

// portEquivalents returns the "ports" the Community ID hashes for a packet
// and whether the message is one-way (and so must not be reordered). For
// ICMP the input ports are type and code.
func portEquivalents(proto, family uint8, sport, dport uint16) (uint16, uint16, bool) {
	var table *[256]int16
	switch {
	case proto == ProtoICMP && family == FamilyIPv4:
		table = &icmpPairs
	case proto == ProtoICMPv6 && family == FamilyIPv6:
		table = &icmp6Pairs
	default:
		return sport, dport, false
	}
	if sport < 256 && table[sport] >= 0 {
		return sport, uint16(table[sport]), false
	}
	return sport, dport, true
}

// CommunityIDLen is the length of a base64 Community ID v1 string.
const CommunityIDLen = 2 + 28

// AppendCommunityID appends the Community ID v1 string ("1:" + base64 of
// the SHA-1) of the tuple under the given seed to dst. It does not
// allocate when dst has room for CommunityIDLen more bytes.
//
// Tuples that are not IP (Family other than FamilyIPv4 or FamilyIPv6, such
// as the link-layer pseudo flows of ARP) have no Community ID: dst is
// returned unchanged.
func AppendCommunityID(dst []byte, seed uint16, t *Tuple) []byte {
	if t.Family != FamilyIPv4 && t.Family != FamilyIPv6 {
		return dst
	}
	sum := communityHash(seed, t)
	dst = append(dst, '1', ':')
	n := len(dst)
	dst = append(dst, make([]byte, 28)...)
	base64.StdEncoding.Encode(dst[n:], sum[:])
	return dst
}

// CommunityID returns the Community ID v1 string of the tuple under seed.
func CommunityID(seed uint16, t Tuple) string {
	var buf [CommunityIDLen]byte
	return string(AppendCommunityID(buf[:0], seed, &t))
}

// CommunityIDRaw returns the 20-byte SHA-1 behind the Community ID (the
// spec's "no base64" form).
func CommunityIDRaw(seed uint16, t Tuple) [sha1.Size]byte {
	return communityHash(seed, &t)
}

func communityHash(seed uint16, t *Tuple) [sha1.Size]byte {
	sp, dp, oneWay := portEquivalents(t.Proto, t.Family, t.SrcPort, t.DstPort)
	src, dst := &t.Src, &t.Dst
	if !oneWay && !ordered(src, dst, sp, dp) {
		src, dst, sp, dp = dst, src, dp, sp
	}
	var buf [2 + 16 + 16 + 1 + 1 + 2 + 2]byte
	binary.BigEndian.PutUint16(buf[0:], seed)
	n := 2
	n += copy(buf[n:], src.Bytes(t.Family))
	n += copy(buf[n:], dst.Bytes(t.Family))
	buf[n] = t.Proto
	buf[n+1] = 0
	n += 2
	if HasPorts(t.Proto) || t.Proto == ProtoICMP || t.Proto == ProtoICMPv6 {
		binary.BigEndian.PutUint16(buf[n:], sp)
		binary.BigEndian.PutUint16(buf[n+2:], dp)
		n += 4
	}
	return sha1.Sum(buf[:n])
}
