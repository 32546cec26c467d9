package verify

// Method selects the hash-to-curve map that turns a token t into the point T.
// The value travels in the "method" member of data[2] (PROTOCOL.md §1).
type Method uint8

const (
	// Increment is try-and-increment (PROTOCOL.md §4), what every shipped
	// client sends.
	Increment Method = iota + 1
	// SWU is the extension's simplified SWU variant (PROTOCOL.md §5).
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
	return "Method(" + itoa(int(m)) + ")"
}

// itoa formats a small non-negative integer without pulling in fmt.
func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
