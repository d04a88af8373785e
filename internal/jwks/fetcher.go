package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultRefreshInterval = 5 * time.Minute
	DefaultMinRefetch      = 10 * time.Second
	DefaultInitialTimeout  = 5 * time.Second
	DefaultMaxBody         = 1 << 20
)

// maxHeaderBytes caps the response headers of the default client.
const maxHeaderBytes = 64 << 10

// Options configures a Fetcher. The zero value is usable: every zero field
// takes the default named in its comment. Negative values are refused.
type Options struct {
	// Client performs the requests. Nil means a client of its own with a
	// DefaultTimeout (10 s) timeout, a 64 KiB response header cap, and the
	// redirect policy below; the Fetcher closes its idle connections in
	// Close.
	//
	// A supplied client is copied, not modified. Whatever its
	// CheckRedirect, a redirect to another scheme or host, one carrying
	// userinfo, or more than 3 redirects are refused before its own policy
	// runs. If its Timeout is zero, every fetch is still bounded by
	// DefaultTimeout.
	Client *http.Client

	// RefreshInterval is the period of the background refresh, counted
	// from the start of the last fetch of any kind. Zero means
	// DefaultRefreshInterval (5 min).
	RefreshInterval time.Duration

	// MinRefetch is the minimum time, measured with Now, from the start of
	// the last fetch of any kind (the first one in New, a background
	// refresh, Refresh, or an earlier kid miss) before a kid miss in
	// LookupKid may fetch again. It bounds the requests that tokens with
	// made-up kids can cause. Zero means DefaultMinRefetch (10 s).
	MinRefetch time.Duration

	// InitialTimeout bounds the first fetch, done synchronously in New.
	// Zero means DefaultInitialTimeout (5 s).
	InitialTimeout time.Duration

	// MaxBody is the largest response body accepted, in bytes, after
	// content decoding. A longer body is an error (ErrBodyTooLarge), never
	// truncated. Zero means DefaultMaxBody (1 MiB).
	MaxBody int64

	// Now is the clock used for MinRefetch. Nil means time.Now.
	Now func() time.Time

	// OnError, if not nil, is called on the refresh goroutine with the
	// error of every failed fetch after New returned (background refresh,
	// Refresh, kid miss), except one caused by Close. The last good set
	// stays in use. It must return quickly and must not call Close (Close
	// waits for that goroutine). It is never called after Close returns.
	OnError func(err error)
}

// Fetcher holds a JWK set fetched from one URL and keeps it fresh with one
// background goroutine, started by New and stopped by Close. All methods are
// safe for simultaneous use. A Fetcher must be created with New.
type Fetcher struct {
	url        string
	client     *http.Client
	transport  *http.Transport // our own, closed in Close; nil for a supplied client
	timeout    time.Duration   // bound on one fetch
	interval   time.Duration
	minRefetch time.Duration
	maxBody    int64
	now        func() time.Time
	onError    func(error)

	snap atomic.Pointer[snapshot]

	ctx     context.Context // cancelled by Close; parent of every background fetch
	cancel  context.CancelFunc
	kick    chan struct{} // cap 1: wakes the goroutine for a queued fetch
	stopped chan struct{} // closed when the goroutine has returned

	mu        sync.Mutex
	lastFetch time.Time // start of the most recent fetch, failed or not
	inflight  *round    // the fetch running now; nil when idle
	queued    *round    // a fetch requested on demand, not started yet
}

// snapshot is the value behind the atomic pointer, so that loading the set
// is one pointer load.
type snapshot struct {
	set jwk.Set
}

// round is one fetch that callers wait for. err is written before done is
// closed and read only after.
type round struct {
	done chan struct{}
	err  error
}

func newRound() *round { return &round{done: make(chan struct{})} }

// New validates rawURL and o, fetches the set once synchronously (bounded
// by ctx and o.InitialTimeout) and starts the refresh goroutine. It fails,
// without starting anything, if the URL or an option is invalid (all
// problems joined) or if the first fetch fails for any reason: a transport
// error or timeout, a status other than 200, a body over MaxBody, a body
// that is not a JSON object with a "keys" array of keys jwk.Parse accepts,
// an empty set, or a set holding a private, symmetric or unusable key.
//
// ctx bounds only the first fetch; values it carries are kept for later
// fetches, but its cancellation does not stop the Fetcher: Close does.
func New(ctx context.Context, rawURL string, o Options) (*Fetcher, error) {
	var errs []error
	if ctx == nil {
		errs = append(errs, fmt.Errorf("%w: nil context", ErrInvalidOptions))
	}
	if _, err := parseURL(rawURL); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RefreshInterval", o.RefreshInterval},
		{"MinRefetch", o.MinRefetch},
		{"InitialTimeout", o.InitialTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%w: negative %s", ErrInvalidOptions, d.name))
		}
	}
	if o.MaxBody < 0 {
		errs = append(errs, fmt.Errorf("%w: negative MaxBody", ErrInvalidOptions))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	f := &Fetcher{
		url:        rawURL,
		timeout:    DefaultTimeout,
		interval:   orDefault(o.RefreshInterval, DefaultRefreshInterval),
		minRefetch: orDefault(o.MinRefetch, DefaultMinRefetch),
		maxBody:    orDefault(o.MaxBody, DefaultMaxBody),
		now:        o.Now,
		onError:    o.OnError,
		kick:       make(chan struct{}, 1),
		stopped:    make(chan struct{}),
	}
	if f.now == nil {
		f.now = time.Now
	}
	if o.Client == nil {
		f.client, f.transport = defaultClient()
	} else {
		c := *o.Client
		c.CheckRedirect = redirectPolicy(o.Client.CheckRedirect)
		f.client = &c
		if c.Timeout > 0 {
			f.timeout = c.Timeout
		}
	}

	ictx, cancel := context.WithTimeout(ctx, orDefault(o.InitialTimeout, DefaultInitialTimeout))
	f.lastFetch = f.now()
	set, err := f.fetch(ictx)
	cancel()
	if err != nil {
		f.closeIdle()
		return nil, fmt.Errorf("jwks: first fetch: %w", err)
	}
	f.snap.Store(&snapshot{set: set})

	f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go f.run()
	return f, nil
}

func orDefault[T time.Duration | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// defaultClient returns a client, and its transport, used when
// Options.Client is nil.
func defaultClient() (*http.Client, *http.Transport) {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   DefaultTimeout,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
		}
	}
	tr.MaxResponseHeaderBytes = maxHeaderBytes
	return &http.Client{
		Transport:     tr,
		Timeout:       DefaultTimeout,
		CheckRedirect: redirectPolicy(nil),
	}, tr
}

// Set returns the last good key set. It never blocks and does not
// allocate. The set is shared: callers must not modify it or its keys.
func (f *Fetcher) Set() jwk.Set {
	return f.snap.Load().set
}

// LookupKid returns the first key of the current set whose "kid" is kid.
// On a miss it asks for one refetch, unless a fetch of any kind started
// less than MinRefetch ago; callers that miss at the same time share one
// fetch. It then looks again. It waits at most the client timeout (10 s by
// default), and returns early with a miss when ctx is done or the Fetcher
// is closed. An empty kid never matches and never fetches.
//
// The key is shared: callers must not modify it.
func (f *Fetcher) LookupKid(ctx context.Context, kid string) (jwk.Key, bool) {
	if kid == "" {
		return nil, false
	}
	if k, ok := f.Set().LookupKeyID(kid); ok {
		return k, true
	}
	r := f.requestRefetch()
	if r == nil {
		// Rate limited, or closed. A fetch may have finished since the
		// first look, so look once more.
		return f.Set().LookupKeyID(kid)
	}
	t := time.NewTimer(f.timeout)
	defer t.Stop()
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, false
	case <-f.ctx.Done():
		return nil, false
	case <-t.C:
		return nil, false
	}
	return f.Set().LookupKeyID(kid)
}

// requestRefetch returns the fetch a kid miss should wait for: the one in
// flight, the one queued, or a new one if MinRefetch has passed since the
// last fetch started. It returns nil if no fetch may run.
func (f *Fetcher) requestRefetch() *round {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		return nil
	}
	if f.inflight != nil {
		return f.inflight
	}
	if f.queued != nil {
		return f.queued
	}
	if f.now().Sub(f.lastFetch) < f.minRefetch {
		return nil
	}
	return f.queueLocked()
}

// queueLocked queues a fetch and wakes the goroutine. f.mu must be held
// and f.queued must be nil.
func (f *Fetcher) queueLocked() *round {
	f.queued = newRound()
	select {
	case f.kick <- struct{}{}:
	default: // a wake-up is already pending
	}
	return f.queued
}

// Refresh fetches the set now, ignoring MinRefetch, and returns the result
// of that fetch. The fetch starts after Refresh is called (it never reuses
// one already in flight); concurrent calls may share it. On success the
// set is replaced; on failure the last good set stays and OnError is called
// as well. It returns ctx.Err() if ctx is done first, ErrClosed after Close.
func (f *Fetcher) Refresh(ctx context.Context) error {
	f.mu.Lock()
	if f.ctx.Err() != nil {
		f.mu.Unlock()
		return ErrClosed
	}
	r := f.queued
	if r == nil {
		r = f.queueLocked()
	}
	f.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	case <-f.ctx.Done():
		return ErrClosed
	}
}

// Close stops the refresh goroutine, cancelling a fetch in flight, and waits
// for it to return. Waiting LookupKid and Refresh calls return. Set keeps
// returning the last good set. Close is idempotent and safe for
// simultaneous use.
func (f *Fetcher) Close() {
	f.cancel()
	<-f.stopped
	f.closeIdle()
}

func (f *Fetcher) closeIdle() {
	if f.transport != nil {
		f.transport.CloseIdleConnections()
	}
}

// run is the refresh goroutine: the only place, after New, where fetches
// happen, so that they never overlap and a set never replaces a newer one.
func (f *Fetcher) run() {
	defer close(f.stopped)
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
			f.mu.Lock()
			pending := f.queued != nil
			f.mu.Unlock()
			if !pending { // the queued fetch already ran on a tick
				continue
			}
		}
		if f.ctx.Err() != nil {
			return
		}
		f.refreshOnce()
		// Count the period from this fetch. Since Go 1.23 no stale tick
		// is received after Reset.
		t.Reset(f.interval)
	}
}

// refreshOnce runs the queued fetch, or a fresh one for a tick, publishes
// the set on success and reports a failure to OnError.
func (f *Fetcher) refreshOnce() {
	f.mu.Lock()
	r := f.queued
	f.queued = nil
	if r == nil {
		r = newRound()
	}
	f.inflight = r
	f.lastFetch = f.now()
	f.mu.Unlock()

	set, err := f.fetch(f.ctx)
	if err == nil {
		f.snap.Store(&snapshot{set: set})
	}

	f.mu.Lock()
	f.inflight = nil
	f.mu.Unlock()
	r.err = err
	close(r.done)

	if err != nil && f.onError != nil && f.ctx.Err() == nil {
		f.onError(err)
	}
}

// fetch performs one GET, bounded by ctx and f.timeout, and parses the
// body.
func (f *Fetcher) fetch(ctx context.Context) (jwk.Set, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, redactErr(err))
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		// net/http's *url.Error carries the whole URL (of the last
		// redirect too), whose query often holds an API key.
		err = redactErr(err)
		if errors.Is(err, ErrRedirect) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %d", ErrStatus, resp.StatusCode)
	}
	if resp.ContentLength > f.maxBody {
		return nil, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, f.maxBody)
	}
	limit := f.maxBody
	if limit < math.MaxInt64 {
		limit++
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", ErrFetch, redactErr(err))
	}
	if int64(len(body)) > f.maxBody {
		return nil, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, f.maxBody)
	}
	return parseSet(body)
}
