package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Paths of the provider API the gateway calls, below the upstream base URL.
const (
	pathRelays     = "/api/privacy/v1/relays"
	pathChallenge  = "/api/privacy/v1/relays/challenge"
	pathSign       = "/api/v1/privacy-passes"
	pathHealth     = "/healthz"
	pathClaimStart = "/api/privacy/v1/relays/"
	pathClaimEnd   = "/generate-claim"
)

// maxUpstreamBody bounds an upstream answer read into memory. The provider's
// largest answer (a claim payload) is well under 64 KiB.
const maxUpstreamBody = 1 << 20

// defaultBackoff is the wait before each retry: three retries, after 100,
// 200 and 400 ms, as the provider's published SDK does.
var defaultBackoff = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}

// DefaultBackoff returns the waits before the retries of one upstream call
// (a copy): 100, 200 and 400 ms.
func DefaultBackoff() []time.Duration { return append([]time.Duration(nil), defaultBackoff...) }

// upstream calls the provider API with the retry rules of the package doc.
type upstream struct {
	base      string // scheme://host[/path], no trailing slash
	client    *http.Client
	backoff   []time.Duration
	sleep     func(context.Context, time.Duration) error
	now       func() time.Time
	metrics   *metrics
	requestID func(context.Context) string
}

// call is one upstream request, repeated as the retry rules allow.
type call struct {
	name   string // metric label: create_relay, challenge, sign, generate_claim
	path   string // below base; made of constants and checked tokens only
	header http.Header
	body   []byte
	// notReadyRetry: 403 means "claim not ready yet" and is retried
	// (generate-claim only).
	notReadyRetry bool
}

// do sends c until it succeeds, fails for good, runs out of retries, or the
// next wait would end past ctx's deadline; it returns the 2xx body or the
// last failure.
func (u *upstream) do(ctx context.Context, c call) ([]byte, error) {
	tr := traceFrom(ctx)
	for retry := 0; ; retry++ {
		body, err := u.attempt(ctx, c)
		if tr != nil {
			tr.attempts++
		}
		if err == nil {
			return body, nil
		}
		reason, again := retryable(c, err)
		if !again || retry >= len(u.backoff) {
			return nil, err
		}
		wait := u.backoff[retry]
		if !u.fits(ctx, wait) {
			// Waiting would only end in a timeout: the last answer says more.
			return nil, err
		}
		u.metrics.upstreamRetries.WithLabelValues(c.name, reason).Inc()
		if err := u.sleep(ctx, wait); err != nil {
			return nil, contextError(ctx)
		}
	}
}

// fits reports whether a wait of d ends before the request's deadline: the
// one the handler set on the injected clock, or else ctx's.
func (u *upstream) fits(ctx context.Context, d time.Duration) bool {
	if tr := traceFrom(ctx); tr != nil && !tr.deadline.IsZero() {
		return u.now().Add(d).Before(tr.deadline)
	}
	if deadline, ok := ctx.Deadline(); ok {
		return time.Now().Add(d).Before(deadline)
	}
	return true
}

// retryable says whether a failure is worth another attempt, and why (the
// metric label): the statuses 429, 500, 502, 503 and 504, 403 where it
// means "not ready yet", and network errors. Timeouts and cancellations
// end the call.
func retryable(c call, err error) (reason string, again bool) {
	var up *upstreamError
	var nerr *networkError
	switch {
	case errors.As(err, &up):
		switch up.status {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return strconv.Itoa(up.status), true
		case http.StatusForbidden:
			return "403", c.notReadyRetry
		}
	case errors.As(err, &nerr):
		return "network_error", true
	}
	return "", false
}

// attempt sends c once.
func (u *upstream) attempt(ctx context.Context, c call) ([]byte, error) {
	start := u.now()
	result := "network_error"
	defer func() {
		u.metrics.upstreamRequests.WithLabelValues(c.name, result).Inc()
		u.metrics.upstreamTime.WithLabelValues(c.name).Observe(u.now().Sub(start).Seconds())
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.base+c.path, bytes.NewReader(c.body))
	if err != nil {
		// Only a bug can get here: the path is built from checked parts.
		result = "internal"
		return nil, err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if id := u.requestID(ctx); id != "" {
		req.Header.Set(RequestIDHeader, id)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		if cerr := contextError(ctx); cerr != nil {
			result = contextResult(cerr)
			return nil, cerr
		}
		return nil, &networkError{call: c.name, cause: withoutURL(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody+1))
	if err != nil {
		if cerr := contextError(ctx); cerr != nil {
			result = contextResult(cerr)
			return nil, cerr
		}
		return nil, &networkError{call: c.name, cause: withoutURL(err)}
	}
	result = strconv.Itoa(resp.StatusCode)
	switch {
	case len(body) > maxUpstreamBody:
		return nil, &badUpstreamError{call: c.name, reason: "answer over " + strconv.Itoa(maxUpstreamBody) + " bytes"}
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return body, nil
	}
	return nil, &upstreamError{call: c.name, status: resp.StatusCode, body: body, shaped: isErrorsShape(body)}
}

// contextError is errTimeout or errCanceled once ctx is done, else nil.
func contextError(ctx context.Context) error {
	switch ctx.Err() {
	case nil:
		return nil
	case context.DeadlineExceeded:
		return errTimeout
	default:
		return errCanceled
	}
}

func contextResult(err error) string {
	if errors.Is(err, errTimeout) {
		return "timeout"
	}
	return "canceled"
}

// withoutURL drops the URL from net/http's errors: the path of a
// generate-claim call holds the relay token.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New(ue.Op + ": " + ue.Err.Error())
	}
	return err
}

// sleepContext waits d, or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newHTTPClient is the default upstream client: net/http's default
// transport settings with more idle connections per host (every request
// goes to one host) and idle connections closed before a provider with
// ppredeem's default idle_timeout (60s) closes them. It never follows
// redirects: the provider API answers none, so a 3xx is a bad answer.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 30 * time.Second
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// parseBase checks the upstream base URL (config.ValidateGateway did the
// same for the command) and drops a trailing slash.
func parseBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", errors.New("gateway: Options.Upstream must be an http or https base URL without credentials, query or fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}
