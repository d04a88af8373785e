package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultRefreshInterval = 5 * time.Minute
	DefaultMinRefetch      = 5 * time.Second
	DefaultInitialTimeout  = 5 * time.Second
	DefaultMaxBody         = 1 << 20
)

// Retry pacing while no set has been fetched yet (Options.StartWithoutSet):
// the first retry after minRetry, doubling up to maxRetry (or the refresh
// interval, if shorter).
const (
	minRetry = time.Second
	maxRetry = 30 * time.Second
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

	// MinRefetch is the minimum time, measured with Now, between two
	// fetches caused by kid misses in LookupKid. It bounds the requests
	// that tokens with made-up kids can cause. The first miss may fetch
	// at once, even right after New: a key the provider added just
	// before this instance started is found without delay. Zero means
	// DefaultMinRefetch (5 s).
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

	// StartWithoutSet lets New succeed when the first fetch fails: Set
	// then returns nil, InitialError reports that failure, and the
	// goroutine retries after 1 s, doubling up to 30 s (or
	// RefreshInterval if shorter), until a set arrives; kid misses may
	// fetch too, as limited by MinRefetch. Default false: New fails.
	StartWithoutSet bool

	// OnSkipped, if not nil, is called with one note per key a fetched
	// set held but the Fetcher left out (see parseSet: encryption keys,
	// encryption algorithms, unsupported key types or curves), each note
	// naming the key's index, kid and the reason. It is called when the
	// notes differ from those of the previous successful fetch, the first
	// time from New, later on the refresh goroutine, with the same
	// restrictions as OnError.
	OnSkipped func(notes []string)

	// OnRecovered, if not nil, is called on the refresh goroutine when a
	// fetch succeeds after one or more failed fetches (including a first
	// fetch that failed under StartWithoutSet), with the same
	// restrictions as OnError.
	OnRecovered func()

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
	onSkipped  func([]string)
	onRecover  func()
	issuer     string // NewDiscovery: the issuer whose document names the set's URL
	initialErr error  // the first fetch's error under StartWithoutSet

	snap atomic.Pointer[snapshot]
	// skipped are the notes of the last successful fetch; only New and
	// then the refresh goroutine touch them.
	skipped []string

	ctx     context.Context // cancelled by Close; parent of every background fetch
	cancel  context.CancelFunc
	kick    chan struct{} // cap 1: wakes the goroutine for a queued fetch
	stopped chan struct{} // closed when the goroutine has returned

	mu        sync.Mutex
	lastFetch time.Time // start of the most recent fetch, failed or not
	lastMiss  time.Time // start of the most recent fetch a kid miss asked for
	failing   bool      // the last fetch failed (or none succeeded yet)
	backoff   time.Duration
	inflight  *round // the fetch running now; nil when idle
	queued    *round // a fetch requested on demand, not started yet
}

// snapshot is the value behind the atomic pointer, so that loading the set
// is one pointer load.
type snapshot struct {
	set jwk.Set // nil until the first successful fetch (StartWithoutSet)
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
	if _, err := parseURL(rawURL); err != nil {
		errs = append(errs, err)
	}
	return newFetcher(ctx, rawURL, "", o, errs)
}

// NewDiscovery is New for an OpenID Provider: each fetch first reads
// {issuer}/.well-known/openid-configuration (OpenID Connect Discovery 1.0
// §4; a trailing '/' of the issuer is removed before the suffix is
// appended), requires its "issuer" member to equal issuer exactly, and
// then fetches the set at its "jwks_uri", so that both are refreshed on
// the same schedule. The issuer and the jwks_uri must each pass
// ValidateIssuer and ValidateURL. The document is capped at 256 KiB.
func NewDiscovery(ctx context.Context, issuer string, o Options) (*Fetcher, error) {
	var errs []error
	if err := ValidateIssuer(issuer); err != nil {
		errs = append(errs, err)
	}
	return newFetcher(ctx, issuer, issuer, o, errs)
}

func newFetcher(ctx context.Context, rawURL, issuer string, o Options, errs []error) (*Fetcher, error) {
	if ctx == nil {
		errs = append(errs, fmt.Errorf("%w: nil context", ErrInvalidOptions))
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
		onSkipped:  o.OnSkipped,
		onRecover:  o.OnRecovered,
		issuer:     issuer,
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
	set, skipped, err := f.load(ictx)
	cancel()
	switch {
	case err == nil:
		f.snap.Store(&snapshot{set: set})
		f.noteSkipped(skipped)
	case o.StartWithoutSet:
		f.initialErr = fmt.Errorf("jwks: first fetch: %w", err)
		f.failing = true
		f.snap.Store(&snapshot{})
	default:
		f.closeIdle()
		return nil, fmt.Errorf("jwks: first fetch: %w", err)
	}

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
// It is nil only under StartWithoutSet, until the first fetch succeeds.
func (f *Fetcher) Set() jwk.Set {
	return f.snap.Load().set
}

// InitialError returns the error of the first fetch when New succeeded
// under StartWithoutSet without a set, else nil.
func (f *Fetcher) InitialError() error { return f.initialErr }

// lookup finds kid in the current set, which may be nil.
func (f *Fetcher) lookup(kid string) (jwk.Key, bool) {
	s := f.Set()
	if s == nil {
		return nil, false
	}
	return s.LookupKeyID(kid)
}

// noteSkipped reports the notes of a successful fetch to OnSkipped when
// they differ from the previous ones. It runs in New or on the refresh
// goroutine, never both at once.
func (f *Fetcher) noteSkipped(notes []string) {
	if slices.Equal(notes, f.skipped) {
		return
	}
	f.skipped = notes
	if len(notes) > 0 && f.onSkipped != nil {
		f.onSkipped(notes)
	}
}

// LookupKid returns the first key of the current set whose "kid" is kid.
// On a miss it asks for one refetch, unless a refetch for a miss started
// less than MinRefetch ago; callers that miss at the same time share one
// fetch, and a miss while a fetch of any kind is under way waits for it. It then looks again. It waits at most the client timeout (10 s by
// default), and returns early with a miss when ctx is done or the Fetcher
// is closed. An empty kid never matches and never fetches.
//
// The key is shared: callers must not modify it.
func (f *Fetcher) LookupKid(ctx context.Context, kid string) (jwk.Key, bool) {
	if kid == "" {
		return nil, false
	}
	if k, ok := f.lookup(kid); ok {
		return k, true
	}
	r := f.requestRefetch()
	if r == nil {
		// Rate limited, or closed. A fetch may have finished since the
		// first look, so look once more.
		return f.lookup(kid)
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
	return f.lookup(kid)
}

// requestRefetch returns the fetch a kid miss should wait for: the one in
// flight, the one queued, or a new one if MinRefetch has passed since the
// last fetch a miss asked for. It returns nil if no fetch may run.
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
	now := f.now()
	if !f.lastMiss.IsZero() && now.Sub(f.lastMiss) < f.minRefetch {
		return nil
	}
	f.lastMiss = now
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
	t := time.NewTimer(f.nextWait())
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
		t.Reset(f.nextWait())
	}
}

// nextWait is the time until the next scheduled fetch: the refresh
// interval once a set is held, a growing retry delay before that.
func (f *Fetcher) nextWait() time.Duration {
	if f.Set() != nil {
		return f.interval
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	limit := min(maxRetry, f.interval)
	if f.backoff == 0 {
		f.backoff = min(minRetry, limit)
	} else {
		f.backoff = min(2*f.backoff, limit)
	}
	return f.backoff
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

	set, skipped, err := f.load(f.ctx)
	if err == nil {
		f.snap.Store(&snapshot{set: set})
	}

	f.mu.Lock()
	f.inflight = nil
	recovered := err == nil && f.failing
	f.failing = err != nil
	if err == nil {
		f.backoff = 0
	}
	f.mu.Unlock()
	r.err = err
	close(r.done)

	if f.ctx.Err() != nil {
		return
	}
	if err != nil {
		if f.onError != nil {
			f.onError(err)
		}
		return
	}
	f.noteSkipped(skipped)
	if recovered && f.onRecover != nil {
		f.onRecover()
	}
}

// load fetches the set: through the discovery document with an issuer,
// else from the URL given to New.
func (f *Fetcher) load(ctx context.Context) (jwk.Set, []string, error) {
	u := f.url
	if f.issuer != "" {
		var err error
		if u, err = f.discover(ctx); err != nil {
			return nil, nil, err
		}
	}
	return f.fetch(ctx, u)
}

// fetch performs one GET of the set at u, bounded by ctx and f.timeout,
// and parses the body.
func (f *Fetcher) fetch(ctx context.Context, u string) (jwk.Set, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFetch, redactErr(err))
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		// net/http's *url.Error carries the whole URL (of the last
		// redirect too), whose query often holds an API key.
		err = redactErr(err)
		if errors.Is(err, ErrRedirect) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%w: %d", ErrStatus, resp.StatusCode)
	}
	if resp.ContentLength > f.maxBody {
		return nil, nil, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, f.maxBody)
	}
	limit := f.maxBody
	if limit < math.MaxInt64 {
		limit++
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading body: %w", ErrFetch, redactErr(err))
	}
	if int64(len(body)) > f.maxBody {
		return nil, nil, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, f.maxBody)
	}
	return parseSet(body)
}
