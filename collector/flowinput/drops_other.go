//go:build !linux

package flowinput

import (
	"errors"
	"net"
)

// oobSize: no control messages are read off Linux.
const oobSize = 0

// enableDropCount is Linux only (SO_RXQ_OVFL).
func enableDropCount(*net.UDPConn) error {
	return errors.New("socket drop counts need Linux (SO_RXQ_OVFL)")
}

// socketDrops never finds a drop count off Linux.
func socketDrops([]byte) (uint32, bool) { return 0, false }
