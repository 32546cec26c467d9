package main

import (
	"encoding/json"
	"net/http"

	"github.com/ppredeem/ppredeem/rpc/admin"
	"github.com/ppredeem/ppredeem/spend"
)

// UsagePath is the admin listener's usage endpoint: GET answers every usage counter of
// the store (billing: the passes issued per API key and claim type), as
//
//	{"usage":[{"subject":"apikey:NAME","item":"CLAIM TYPE","count":N}, ...]}
//
// It serves `ppredeem apikeys usage --admin URL` while the server holds the embedded
// store's file.
const UsagePath = "/usage"

type usageRow struct {
	Subject string `json:"subject"`
	Item    string `json:"item"`
	Count   int64  `json:"count"`
}

type usageBody struct {
	Usage []usageRow `json:"usage"`
}

// adminHandler is the admin listener: the metrics handler and, when the store counts
// usage, GET /usage.
func adminHandler(m *admin.Metrics, store spend.Store) http.Handler {
	counter, ok := store.(spend.UsageCounter)
	if !ok {
		return m.Handler()
	}
	mux := http.NewServeMux()
	mux.Handle("/", m.Handler())
	mux.HandleFunc("GET "+UsagePath, func(w http.ResponseWriter, r *http.Request) {
		counts, err := counter.Usage(r.Context())
		if err != nil {
			http.Error(w, "usage unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		body := usageBody{Usage: make([]usageRow, len(counts))}
		for i, c := range counts {
			body.Usage[i] = usageRow(c)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
	return mux
}
