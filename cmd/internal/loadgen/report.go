package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run. The JSON names are a public contract.
type Report struct {
	// Redemptions is the number of JSON-RPC answers received, whatever
	// their code.
	Redemptions          int     `json:"redemptions"`
	DurationSeconds      float64 `json:"duration_seconds"`
	RedemptionsPerSecond float64 `json:"redemptions_per_second"`
	// Latency of the answered requests, in milliseconds; open loop: from the
	// scheduled time.
	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P99ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
	// Codes counts outcomes: "success", a JSON-RPC error code ("-32021"),
	// "transport" for network/HTTP failures and answers that are not
	// JSON-RPC, "late" for open-loop requests dropped because Concurrency
	// requests were in flight when they came due.
	Codes       map[string]int `json:"codes"`
	Concurrency int            `json:"concurrency"`
	Rate        float64        `json:"rate,omitempty"`
	// Expected counts, for the requests sent, the outcome each was built to
	// get: "success", "-32021" (double spend), "-32020" (bad tag).
	Expected map[string]int `json:"expected"`
	// Unexpected counts answers whose code differs from what that request
	// was built to get (transport failures are not answers).
	Unexpected int `json:"unexpected"`
	// Notes explain an early stop (interrupted, token pool used up) and
	// quote one of the errors behind Codes["transport"], if any.
	Notes []string `json:"notes,omitempty"`
}

// codeName is the Codes/Expected key of an outcome code.
func codeName(code int) string {
	switch code {
	case codeSuccess:
		return "success"
	case codeTransport:
		return "transport"
	}
	return strconv.Itoa(code)
}

func newReport(c Config, workers []*worker, elapsed time.Duration, late int64, notes []string) *Report {
	r := &Report{
		DurationSeconds: elapsed.Seconds(),
		Codes:           make(map[string]int),
		Concurrency:     c.Concurrency,
		Rate:            c.Rate,
		Expected:        make(map[string]int),
		Notes:           notes,
	}
	for k := range numKinds {
		r.Expected[codeName(expectedCode[k])] = 0
	}
	n := 0
	for _, w := range workers {
		n += len(w.lat)
	}
	lat := make([]time.Duration, 0, n)
	for _, w := range workers {
		lat = append(lat, w.lat...)
		r.Redemptions += w.answered
		r.Unexpected += w.unexpected
		for _, c := range w.codes {
			r.Codes[codeName(c.code)] += c.n
		}
		for k, v := range w.expected {
			r.Expected[codeName(expectedCode[k])] += v
		}
	}
	if late > 0 {
		r.Codes["late"] = int(late)
	}
	if r.DurationSeconds > 0 {
		r.RedemptionsPerSecond = float64(r.Redemptions) / r.DurationSeconds
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		r.MeanMs = ms(sum / time.Duration(len(lat)))
		r.P50ms = ms(percentile(lat, 0.50))
		r.P90ms = ms(percentile(lat, 0.90))
		r.P99ms = ms(percentile(lat, 0.99))
		r.MaxMs = ms(lat[len(lat)-1])
	}
	return r
}

// percentile is the nearest-rank percentile of sorted, which is not empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Err says whether the run failed, for a script's sake: it returns an error
// if any request got an unexpected answer (Unexpected > 0) or none at all
// (Codes["transport"] > 0), and nil otherwise. The answers a request was
// built to get (-32021 for a double spend, -32020 for a bad tag) are not
// failures, nor are late requests (never sent) or an early stop (see Notes).
// `ppredeem bench` exits non-zero when Err is not nil.
func (r *Report) Err() error {
	transport := r.Codes[codeName(codeTransport)]
	if r.Unexpected == 0 && transport == 0 {
		return nil
	}
	return fmt.Errorf("loadgen: %d unexpected answers and %d transport failures (see the report)", r.Unexpected, transport)
}

// WriteJSON writes the report as one JSON object and a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

// WriteText writes a human-readable summary.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := fmt.Sprintf("closed loop, concurrency %d", r.Concurrency)
	if r.Rate > 0 {
		mode = fmt.Sprintf("open loop at %g/s, at most %d in flight", r.Rate, r.Concurrency)
	}
	fmt.Fprintf(tw, "redemptions\t%d in %.2fs = %.1f/s (%s)\n",
		r.Redemptions, r.DurationSeconds, r.RedemptionsPerSecond, mode)
	fmt.Fprintf(tw, "latency ms\tmean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
		r.MeanMs, r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "outcome\tcount\texpected")
	for _, k := range r.outcomeKeys() {
		exp := "-"
		if v, ok := r.Expected[k]; ok {
			exp = strconv.Itoa(v)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", k, r.Codes[k], exp)
	}
	fmt.Fprintf(tw, "unexpected\t%d\t\n", r.Unexpected)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		if _, err := fmt.Fprintf(w, "note: %s\n", n); err != nil {
			return err
		}
	}
	return nil
}

// outcomeKeys orders the rows of the text table: success, the JSON-RPC codes
// in numeric order, transport, late.
func (r *Report) outcomeKeys() []string {
	seen := map[string]bool{}
	var codes []int
	var other []string
	add := func(k string) {
		if seen[k] || k == "success" || k == "transport" || k == "late" {
			return
		}
		seen[k] = true
		if n, err := strconv.Atoi(k); err == nil {
			codes = append(codes, n)
		} else {
			other = append(other, k)
		}
	}
	for k := range r.Codes {
		add(k)
	}
	for k, v := range r.Expected {
		if v > 0 {
			add(k)
		}
	}
	slices.SortFunc(codes, func(a, b int) int { return b - a }) // -32020, -32021, ..., -32700
	slices.Sort(other)
	keys := []string{"success"}
	for _, c := range codes {
		keys = append(keys, strconv.Itoa(c))
	}
	keys = append(keys, other...)
	for _, k := range []string{"transport", "late"} {
		if r.Codes[k] > 0 {
			keys = append(keys, k)
		}
	}
	return keys
}

// String is the text summary.
func (r *Report) String() string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}
