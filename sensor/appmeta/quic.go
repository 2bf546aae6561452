package appmeta

// quicScratch is reused QUIC decryption state.
type quicScratch struct{}

// isQUICInitial reports a QUIC v1 long-header Initial packet.
func isQUICInitial(b []byte) bool {
	return len(b) >= 1200 && b[0]&0xf0 == 0xc0 && b[1] == 0 && b[2] == 0 && b[3] == 0 && b[4] == 1
}

func (x *Extractor) parseQUIC(f *Flow, d int, b []byte) uint8 { return resFail }
