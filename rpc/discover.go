package rpc

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// openRPC is the OpenRPC document that rpc.discover returns, and the one
// copy of it in the repository (README links it).
//
//go:embed openrpc.json
var openRPC []byte

// discoverService answers rpc.discover (OpenRPC service discovery).
type discoverService struct{}

// Discover ignores its params: rpc.discover takes none.
func (discoverService) Discover(_ *http.Request, _ *DiscoverArgs, reply *json.RawMessage) error {
	*reply = openRPC
	return nil
}

// DiscoverArgs is the (ignored) params of rpc.discover; gorilla needs the
// type exported.
type DiscoverArgs struct{}

func (*DiscoverArgs) UnmarshalJSON([]byte) error { return nil }
