//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loadgen

import "net"

// connAlive cannot peek at the socket on this platform: an idle connection
// is assumed usable (a closed one costs one transport failure, then a redial).
func connAlive(net.Conn) bool { return true }
