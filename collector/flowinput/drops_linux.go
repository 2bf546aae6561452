package flowinput

import (
	"encoding/binary"
	"net"
	"syscall"
)

// oobSize holds one SO_RXQ_OVFL control message.
var oobSize = syscall.CmsgSpace(4)

// enableDropCount asks the kernel to attach the socket's drop count
// (datagrams dropped because the receive buffer was full) to every
// datagram read (SO_RXQ_OVFL).
func enableDropCount(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
	}); err != nil {
		return err
	}
	return serr
}

// socketDrops reads the socket's cumulative drop count from a datagram's
// control messages; ok is false when there is none (the kernel attaches
// it once the socket has dropped something).
func socketDrops(oob []byte) (uint32, bool) {
	if len(oob) == 0 {
		return 0, false
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data), true
		}
	}
	return 0, false
}
