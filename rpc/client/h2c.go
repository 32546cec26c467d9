package client

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"filippo.io/nistec"
)

// incrementSeed is hashed before the token in the first round of
// try-and-increment: the ASCII of "1.2.840.10045.3.1.7 point generation
// seed" (verify/PROTOCOL.md §4; INC_H2C_LABEL in src/crypto/local.js of
// privacypass/challenge-bypass-extension v2.0.6).
var incrementSeed = []byte("1.2.840.10045.3.1.7 point generation seed")

// incrementRounds is how many digests try-and-increment tries before it
// gives up (verify/PROTOCOL.md §4; hashAndInc in src/ext/h2c.js, v2.0.6).
const incrementRounds = 20

// errNoCurvePoint: no round of try-and-increment gave a point (about one
// token in 2²⁰); the token is drawn again.
var errNoCurvePoint = errors.New("ppredeem client: the token does not hash to the curve")

// hashToCurve maps the token t to a point T of P-256 with the method
// "increment" (verify/PROTOCOL.md §4):
//
//	d₀ = SHA256(seed || t || LE32(0)),  dᵢ = SHA256(dᵢ₋₁ || LE32(i))
//	T  = the first dᵢ that decodes as the compressed point 02||dᵢ
//
// nistec's decoder does the range check (dᵢ < p), the square test and the
// root in constant time; the number of rounds depends on t, which is
// public at redemption anyway.
func hashToCurve(t []byte) (*nistec.P256Point, error) {
	var enc [1 + sha256.Size]byte
	enc[0] = 2 // compressed, even y
	var ctr [4]byte
	h := sha256.New()
	for i := range incrementRounds {
		h.Reset()
		if i == 0 {
			h.Write(incrementSeed)
			h.Write(t)
		} else {
			h.Write(enc[1:])
		}
		binary.LittleEndian.PutUint32(ctr[:], uint32(i))
		h.Write(ctr[:])
		h.Sum(enc[1:1])
		if p, err := nistec.NewP256Point().SetBytes(enc[:]); err == nil {
			return p, nil
		}
	}
	return nil, errNoCurvePoint
}
