package verify

// PublicTestKeyID is the ID of the protocol's public test key
// (verify/PROTOCOL.md §8: the reference server's testdata/p256-key.pem,
// private scalar included). Anyone can mint tokens that verify under it, so
// a server holding it redeems tokens nobody was issued; ppredeem's README,
// tests and docker-compose.yml use it for demonstrations only. The key
// itself is in verify/verifytest (test support); production code compares
// key IDs with this constant.
const PublicTestKeyID = "0b4ef6b6786ca08d"
