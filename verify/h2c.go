package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"filippo.io/nistec"
)

// errNoPoint: the token could not be hashed to the curve. Verify reports it as
// ErrBadTag; Key.Tag returns it as is.
var errNoPoint = errors.New("verify: token does not hash to a P-256 point")

// hashToCurve sets T to the token t mapped with the given method
// (verify/PROTOCOL.md §4, §5). On success T is never the point at infinity; on
// error T is unchanged. The caller owns T, so Verify can keep it on the stack.
func hashToCurve(T *nistec.P256Point, t []byte, m Method) error {
	switch m {
	case Increment:
		return hashIncrement(T, t)
	case SWU:
		return hashSWU(T, t)
	}
	return errMethodArgument
}

// incrementSeed is the domain separator of try-and-increment: the ASCII string
// "1.2.840.10045.3.1.7 point generation seed" (41 bytes), H2C_SEED in
// challenge-bypass-extension src/ext/h2c.js and the seed of
// challenge-bypass-server crypto/h2c.go.
const incrementSeed = "1.2.840.10045.3.1.7 point generation seed"

// incrementRounds is the number of attempts before giving up; each fails with
// probability about 1/2, so a token fails with probability about 2⁻²⁰.
const incrementRounds = 20

// hashIncrement is try-and-increment (verify/PROTOCOL.md §4; hashAndInc in
// challenge-bypass-extension v2.0.6 src/ext/h2c.js):
//
//	d₀ = SHA256(SEED || t || LE32(0))
//	dᵢ = SHA256(dᵢ₋₁ || LE32(i))          the seed is hashed in round 0 only
//
// and T is the first dᵢ that decompresses as 02||dᵢ (x < p, x³-3x+b a square,
// even y). nistec's SetBytes does the range check, square test and root in
// the field; it branches on whether the square root exists, which depends only
// on the public token.
func hashIncrement(T *nistec.P256Point, t []byte) error {
	// Round 0 input: SEED || t || LE32(0). A stack buffer covers every
	// realistic token; append moves to the heap only for huge ones.
	var stack [len(incrementSeed) + 256 + 4]byte
	in := append(stack[:0], incrementSeed...)
	in = append(in, t...)
	in = binary.LittleEndian.AppendUint32(in, 0)

	var enc [1 + 32]byte // 02 || d
	enc[0] = 2
	d := (*[32]byte)(enc[1:])
	*d = sha256.Sum256(in)

	for i := uint32(1); ; i++ {
		if _, err := T.SetBytes(enc[:]); err == nil {
			return nil
		}
		if i == incrementRounds {
			return errNoPoint
		}
		var next [32 + 4]byte // d || LE32(i)
		copy(next[:], d[:])
		binary.LittleEndian.PutUint32(next[32:], i)
		*d = sha256.Sum256(next[:])
	}
}
