package rpc

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// OpenRPC is the OpenRPC document that rpc.discover returns. The repository
// keeps a copy at /openrpc.json for readers; a test keeps the two equal.
//
//go:embed openrpc.json
var OpenRPC []byte

// discoverService answers rpc.discover (OpenRPC service discovery).
type discoverService struct{}

// Discover ignores its params: rpc.discover takes none.
func (discoverService) Discover(_ *http.Request, _ *DiscoverArgs, reply *json.RawMessage) error {
	*reply = OpenRPC
	return nil
}

// DiscoverArgs is the (ignored) params of rpc.discover; gorilla needs the
// type exported.
type DiscoverArgs struct{}

func (*DiscoverArgs) UnmarshalJSON([]byte) error { return nil }
