package verify

import "strconv"

// Method selects the hash-to-curve map that turns a token t into the point T.
// The value travels in the "method" member of data[2] (verify/PROTOCOL.md §1).
type Method uint8

const (
	// Increment is try-and-increment (verify/PROTOCOL.md §4), what every shipped
	// client sends.
	Increment Method = iota + 1
	// SWU is the extension's simplified SWU variant (verify/PROTOCOL.md §5).
	SWU
)

// String returns the wire name of m ("increment", "swu"), or "Method(n)" for
// a value that is neither.
func (m Method) String() string {
	switch m {
	case Increment:
		return "increment"
	case SWU:
		return "swu"
	}
	return "Method(" + strconv.Itoa(int(m)) + ")"
}
