package rpctest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/kind/voprf"
	"github.com/ppredeem/ppredeem/rpc/wire"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// Options configures a Server; the zero value serves the test key on a
// fresh embedded store.
type Options struct {
	// Keys are the keys the server redeems under (default: the test key).
	Keys []*verify.Key
	// Limits bound the params (zero fields: verify's defaults).
	Limits verify.Limits
	// Store is the spent-token store (default: a new embedded store in a
	// temporary directory). The Server prepares the keys' storage and
	// closes the store when it closes.
	Store spend.Store
	// Issue, if set, serves POST /api/issue and GET /api/commitments under
	// the keys (the first signs). Left empty, its Kind is the VOPRF kind
	// and its Usage the store; Gate is required.
	Issue *rpc.IssueOptions
	// Configure, if set, adjusts the handler's options before the handler
	// is built, e.g. to wrap the Spender around the real store.
	Configure func(*rpc.Options)
}

// Server is the real redemption handler behind an httptest server,
// counting the HTTP requests it receives.
type Server struct {
	*httptest.Server
	Handler  *rpc.Handler
	Store    spend.Store
	Key      *verify.Key // the first key
	Endpoint string      // URL + /api/redeem
	// IssueURL and CommitmentsURL are URL + /api/issue and
	// /api/commitments.
	IssueURL, CommitmentsURL string

	requests atomic.Int64
	dir      string // the embedded store's temporary directory, if any
}

// NewServer starts a Server and closes it when the test ends.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a Server; Close stops it. For code without a *testing.T
// (examples); tests use NewServer.
func Start(o Options) (*Server, error) {
	keys := o.Keys
	if len(keys) == 0 {
		keys = []*verify.Key{verifytest.Key()}
	}
	ks, err := verify.NewKeySet(keys)
	if err != nil {
		return nil, err
	}
	s := &Server{Store: o.Store, Key: keys[0]}
	if s.Store == nil {
		if s.dir, err = os.MkdirTemp("", "rpctest-"); err != nil {
			return nil, err
		}
		if s.Store, err = spend.OpenBolt(spend.BoltConfig{Path: filepath.Join(s.dir, "spent.db")}); err != nil {
			os.RemoveAll(s.dir)
			return nil, err
		}
	}
	set := voprf.New(ks, o.Limits)
	if err := s.Store.PrepareKeys(context.Background(), set.KeyIDs()); err != nil {
		s.closeStore()
		return nil, fmt.Errorf("rpctest: preparing the keys' storage: %w", err)
	}
	opts := rpc.Options{
		Kinds:   []rpc.Kind{{Method: wire.MethodRedeem, Keys: func() rpc.KeySet { return set }}},
		Spender: s.Store,
		Ready:   s.Store.Ping,
	}
	if o.Issue != nil {
		io := *o.Issue
		if io.Kind == "" {
			io.Kind = wire.MethodRedeem
		}
		if io.Usage == nil {
			usage, ok := s.Store.(rpc.UsageCounter)
			if !ok {
				s.closeStore()
				return nil, fmt.Errorf("rpctest: the store %T counts no usage", s.Store)
			}
			io.Usage = usage
		}
		opts.Issue = &io
	}
	if o.Configure != nil {
		o.Configure(&opts)
	}
	if s.Handler, err = rpc.NewHandler(opts); err != nil {
		s.closeStore()
		return nil, err
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.Handler.ServeHTTP(w, r)
	}))
	s.Endpoint = s.URL + wire.RedeemPath
	s.IssueURL, s.CommitmentsURL = s.URL+wire.IssuePath, s.URL+wire.CommitmentsPath
	return s, nil
}

// Requests returns how many HTTP requests reached the server.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Close stops the HTTP server, then closes the store (also one passed in
// Options) and removes its temporary directory.
func (s *Server) Close() {
	s.Server.Close()
	s.closeStore()
}

func (s *Server) closeStore() {
	// The error is of no use here: a test may have closed the store on
	// purpose, to make it fail.
	_ = s.Store.Close()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}
