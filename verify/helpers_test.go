package verify

import "math/big"

var orderN = fromHex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")

// scalarInverse returns r⁻¹ mod n as 32 big-endian bytes (tests only).
func scalarInverse(r []byte) []byte {
	x := new(big.Int).SetBytes(r)
	x.ModInverse(x, orderN)
	return x.FillBytes(make([]byte, 32))
}
