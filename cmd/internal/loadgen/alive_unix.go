//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loadgen

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// connAlive reports whether an idle connection is still open and has
// nothing unread: a non-blocking peek at the socket, which tells a
// connection the server closed (EOF or reset) from one that is merely quiet.
func connAlive(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// The last request's deadline may have passed; RawConn.Read would report
	// it instead of calling f.
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: open and quiet. No error: EOF (0 bytes) or stray bytes.
		// Any other error: reset or otherwise broken.
		alive = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true // never wait for readability
	})
	return err == nil && alive
}
