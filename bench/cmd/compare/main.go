// Command compare measures wssec against a raw gorilla/websocket server,
// a hand-rolled equivalent and two peer libraries (lxzan/gws and
// coder/websocket echo servers, from bench's own go.mod), interleaved in
// one process, and prints every ratio with its spread over rounds and the
// project's targets.
//
//	cd bench && go run ./cmd/compare          # full run, under 3 minutes on 2 cores
//	cd bench && go run ./cmd/compare -quick   # about 20 seconds, for CI
//
// bench is a module of its own (its go.mod replaces the library with the
// checkout above it), so run it from inside bench/, or from the
// repository root with go -C bench run ./cmd/compare.
//
// Every workload runs for every server once per round, in an order that
// rotates from round to round, so that noise from the rest of the machine
// falls on all of them alike; each ratio is taken within a round and the
// table shows the median over rounds (and the spread). Idle memory is
// measured with the server in a child process (this binary, re-executed)
// so that the client sockets do not count.
//
// wssec caches verified tokens, so accepted handshakes are measured twice:
// "reused", one token for every handshake, as reconnecting clients do
// (one signature check, then cache hits), and "fresh", a token of its own
// for every handshake (minted between measurements), as first
// connections do (a signature check each).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wssec/wssec/bench"
)

func main() {
	if bench.RunChildIfAsked() {
		return
	}
	var cfg config
	flag.BoolVar(&cfg.quick, "quick", false, "short run for CI (about 20 s)")
	flag.IntVar(&cfg.rounds, "rounds", 0, "rounds of every workload (default 40, quick 12)")
	flag.DurationVar(&cfg.dur, "dur", 0, "time per workload per server per round (default 120ms, quick 60ms)")
	flag.IntVar(&cfg.sockets, "sockets", 0, "idle sockets per memory measurement (default 4000, quick 1000)")
	flag.IntVar(&cfg.memRounds, "memrounds", 0, "rounds of the memory measurement (default 2, quick 1)")
	flag.DurationVar(&cfg.budget, "budget", 0, "stop starting new rounds after this long (default 150s, quick 25s)")
	flag.Parse()
	cfg.defaults()
	if err := run(cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

type config struct {
	quick                      bool
	rounds, sockets, memRounds int
	dur, budget                time.Duration
}

func (c *config) defaults() {
	pick := func(v *int, full, quick int) {
		if *v <= 0 {
			*v = full
			if c.quick {
				*v = quick
			}
		}
	}
	pickD := func(v *time.Duration, full, quick time.Duration) {
		if *v <= 0 {
			*v = full
			if c.quick {
				*v = quick
			}
		}
	}
	pick(&c.rounds, 40, 12)
	pick(&c.sockets, 4000, 1000)
	pick(&c.memRounds, 2, 1)
	pickD(&c.dur, 120*time.Millisecond, 60*time.Millisecond)
	pickD(&c.budget, 150*time.Second, 25*time.Second)
}

// member is one server under one workload.
type member struct {
	label string
	pool  *bench.Pool
	rates []float64 // ops/s, one per round
	cpu   []float64 // process CPU seconds per op, one per round
	ops   int64     // ops completed in the recorded rounds
}

// group is one workload run on several servers.
type group struct {
	name, unit string
	members    []*member
}

func (g *group) get(label string) *member {
	for _, m := range g.members {
		if m.label == label {
			return m
		}
	}
	panic("no member " + label)
}

func run(cfg config, out io.Writer) (err error) {
	start := time.Now()
	goroutines := runtime.NumGoroutine()
	ctx := context.Background()

	// File descriptors: the echo pools hold both ends of 1+64 sockets per
	// echo server in this process, and the memory measurement holds its
	// client ends here (the server ends live in the child). A single
	// process holding both ends of 4 000 sockets would need 8 000+.
	const echoFDs = 6 * 2 * 65
	need := uint64(cfg.sockets + echoFDs + 512)
	have, ferr := bench.RaiseFDLimit(need)
	if ferr != nil {
		return ferr
	}
	if have < need {
		scaled := int(have) - (echoFDs + 512)
		if scaled < 100 {
			return fmt.Errorf("open-file limit %d is too low", have)
		}
		fmt.Fprintf(out, "NOTE: open-file limit %d < %d: memory measured with %d sockets instead of %d\n", have, need, scaled, cfg.sockets)
		cfg.sockets = scaled
	}

	printMachine(out, cfg, have)

	keys := map[bench.Alg]*bench.Key{}
	tokens := map[bench.Alg]string{}
	for _, a := range []bench.Alg{bench.ES256, bench.EdDSA, bench.HS256} {
		k, err := bench.NewKey(a)
		if err != nil {
			return err
		}
		keys[a] = k
		if tokens[a], err = k.Token(10 * time.Minute); err != nil {
			return err
		}
	}

	// Servers, closed at the end whatever happens.
	var servers []*bench.Server
	var pools []*bench.Pool
	defer func() {
		for _, p := range pools {
			p.Close()
		}
		for _, s := range servers {
			if cerr := s.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
		if err == nil {
			err = checkGoroutines(out, goroutines)
		}
	}()
	startSrv := func(kind bench.Kind, a bench.Alg) (*bench.Server, error) {
		s, err := bench.Start(kind, bench.Options{Key: keys[a]})
		if err == nil {
			servers = append(servers, s)
		}
		return s, err
	}
	srv := map[string]*bench.Server{}
	for _, c := range []struct {
		name string
		kind bench.Kind
		alg  bench.Alg
	}{
		{"raw", bench.Raw, bench.ES256},
		{"raw+writer", bench.RawWriter, bench.ES256},
		{"hand-rolled", bench.HandRolled, bench.ES256},
		{"gws", bench.Gws, bench.ES256},
		{"coder", bench.Coder, bench.ES256},
		{"wssec", bench.WSSec, bench.ES256},
		{"wssec fresh", bench.WSSec, bench.ES256}, // its own verified-token cache
		{"wssec EdDSA", bench.WSSec, bench.EdDSA},
		{"wssec HS256", bench.WSSec, bench.HS256},
	} {
		if srv[c.name], err = startSrv(c.kind, c.alg); err != nil {
			return err
		}
	}
	limited, err := bench.StartRateLimited(keys[bench.ES256])
	if err != nil {
		return err
	}
	servers = append(servers, limited)

	add := func(g *group, label string, p *bench.Pool, err error) error {
		if err != nil {
			return fmt.Errorf("%s / %s: %w", g.name, label, err)
		}
		pools = append(pools, p)
		g.members = append(g.members, &member{label: label, pool: p})
		return nil
	}
	hdr := func(name string, a bench.Alg) http.Header { return srv[name].Header(tokens[a]) }
	rt1 := &group{name: "round trip, 1 client", unit: "msg/s"}
	rt64 := &group{name: "round trip, 64 clients", unit: "msg/s"}
	hs := &group{name: "accepted handshakes", unit: "hs/s"}
	ref := &group{name: "refused handshakes", unit: "hs/s"}
	for _, name := range []string{"raw", "raw+writer", "hand-rolled", "gws", "coder", "wssec"} {
		s := srv[name]
		p, err := bench.EchoPool(ctx, s.Target(), hdr(name, bench.ES256), 1)
		if err := add(rt1, name, p, err); err != nil {
			return err
		}
		p, err = bench.EchoPool(ctx, s.Target(), hdr(name, bench.ES256), 64)
		if err := add(rt64, name, p, err); err != nil {
			return err
		}
	}
	// Accepted handshakes. wssec caches verified tokens, so the members
	// that reuse one token measure reconnects (no signature check after
	// the first); "fresh" gives every handshake a token of its own, minted
	// between measurements, and measures first connections.
	for _, c := range []struct {
		label, server string
		alg           bench.Alg
	}{
		{"raw", "raw", bench.ES256},
		{"hand-rolled ES256", "hand-rolled", bench.ES256},
		{"wssec ES256 reused", "wssec", bench.ES256},
		{"wssec EdDSA reused", "wssec EdDSA", bench.EdDSA},
		{"wssec HS256 reused", "wssec HS256", bench.HS256},
	} {
		p, err := bench.HandshakePool(ctx, srv[c.server].Target(), hdr(c.server, c.alg), bench.HandshakeWorkers)
		if err := add(hs, c.label, p, err); err != nil {
			return err
		}
	}
	fresh := bench.NewTokenSupply(keys[bench.ES256], 10*time.Minute)
	// Enough for 20 000 handshakes/s, far above what 2 cores reach with a
	// P-256 check each; topped up after every round to 3× the most one
	// measurement used.
	freshMin := int(20000*cfg.dur.Seconds()) + 500
	if err := fresh.Fill(freshMin); err != nil {
		return err
	}
	{
		p, err := bench.FreshHandshakePool(ctx, srv["wssec fresh"].Target(), bench.Origin, fresh, bench.HandshakeWorkers)
		if err := add(hs, "wssec ES256 fresh", p, err); err != nil {
			return err
		}
	}
	good := "Bearer " + tokens[bench.ES256]
	for _, c := range []struct {
		label  string
		s      *bench.Server
		h      http.Header
		status int
	}{
		{"wssec bad origin", srv["wssec"], bench.ProtectedHeader(bench.BadOrigin, good), http.StatusForbidden},
		{"hand-rolled bad origin", srv["hand-rolled"], bench.ProtectedHeader(bench.BadOrigin, good), http.StatusForbidden},
		{"wssec bad token", srv["wssec"], bench.ProtectedHeader(bench.Origin, "Bearer not-a.jwt"), http.StatusUnauthorized},
		{"hand-rolled bad token", srv["hand-rolled"], bench.ProtectedHeader(bench.Origin, "Bearer not-a.jwt"), http.StatusUnauthorized},
		{"wssec rate-limited", limited, bench.ProtectedHeader(bench.Origin, good), http.StatusTooManyRequests},
	} {
		p, err := bench.RefusedPool(ctx, c.s.Target(), c.h, c.status, bench.HandshakeWorkers)
		if err := add(ref, c.label, p, err); err != nil {
			return err
		}
	}
	groups := []*group{rt1, rt64, hs, ref}

	// Warm-up: one short pass, not recorded.
	for _, g := range groups {
		for _, m := range g.members {
			if _, _, err := m.pool.For(cfg.dur / 4); err != nil {
				return fmt.Errorf("warm-up %s / %s: %w", g.name, m.label, err)
			}
		}
	}
	if err := fresh.Fill(freshMin); err != nil {
		return err
	}
	upgradesBefore := map[string]int64{}
	for _, name := range []string{"wssec", "wssec fresh", "hand-rolled"} {
		upgradesBefore[name] = srv[name].WaitUpgrades(1<<62, 50*time.Millisecond) // settle
	}

	// Interleaved rounds.
	memTime := time.Duration(cfg.memRounds*4) * (time.Second + time.Duration(cfg.sockets)*500*time.Microsecond)
	rounds := 0
	members := 0
	for _, g := range groups {
		members += len(g.members)
	}
	var freshMax int64 // the most fresh tokens one measurement used
	roundsStart, roundsCPU := time.Now(), bench.CPUTime()
	for r := 0; r < cfg.rounds; r++ {
		perRound := time.Duration(members)*cfg.dur + 200*time.Millisecond
		if r > 0 && time.Since(start)+perRound+memTime > cfg.budget {
			fmt.Fprintf(out, "NOTE: time budget: stopped after %d of %d rounds\n", r, cfg.rounds)
			break
		}
		for _, g := range groups {
			n := len(g.members)
			for i := 0; i < n; i++ {
				m := g.members[(i+r)%n]
				runtime.GC() // every measurement starts from a collected heap
				cpu0 := bench.CPUTime()
				ops, el, err := m.pool.For(cfg.dur)
				cpu := bench.CPUTime() - cpu0
				if err != nil {
					return fmt.Errorf("round %d %s / %s: %w", r+1, g.name, m.label, err)
				}
				if ops == 0 {
					return fmt.Errorf("round %d %s / %s: no operation completed in %v", r+1, g.name, m.label, cfg.dur)
				}
				m.rates = append(m.rates, float64(ops)/el.Seconds())
				m.cpu = append(m.cpu, cpu.Seconds()/float64(ops))
				m.ops += ops
				if m.label == "wssec ES256 fresh" {
					freshMax = max(freshMax, ops)
				}
			}
		}
		// Not timed: top the fresh tokens up for the next round.
		if err := fresh.Fill(max(freshMin, 3*int(freshMax))); err != nil {
			return err
		}
		rounds++
		if rounds%10 == 0 || rounds == cfg.rounds {
			fmt.Fprintf(out, "round %d/%d done (%.0fs)\n", rounds, cfg.rounds, time.Since(start).Seconds())
		}
	}

	share := (bench.CPUTime() - roundsCPU).Seconds() / (time.Since(roundsStart).Seconds() * float64(runtime.NumCPU()))

	// No refused handshake may have been upgraded: on the servers that
	// also serve refusals, the upgrade counters must have moved by exactly
	// the accepted handshakes counted.
	if n := limited.Upgrades(); n != 0 {
		return fmt.Errorf("the rate-limited server upgraded %d sockets", n)
	}
	for server, label := range map[string]string{"wssec": "wssec ES256 reused", "wssec fresh": "wssec ES256 fresh", "hand-rolled": "hand-rolled ES256"} {
		want := upgradesBefore[server] + hs.get(label).ops
		if got := srv[server].WaitUpgrades(want, 5*time.Second); got != want {
			return fmt.Errorf("%s upgraded %d sockets, %d more than the accepted handshakes", server, got, got-want)
		}
	}

	// Memory, interleaved too.
	mem := map[bench.Kind][]bench.MemResult{}
	if cfg.memRounds > 0 {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		kinds := append(append(slices.Clone(bench.Kinds), bench.RawWriter), bench.Peers...)
		for r := 0; r < cfg.memRounds; r++ {
			for i := range kinds {
				kind := kinds[(i+r)%len(kinds)]
				mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				res, err := bench.MeasureIdleMemory(mctx, exe, kind, cfg.sockets)
				cancel()
				if err != nil {
					return fmt.Errorf("memory %s: %w", kind, err)
				}
				mem[kind] = append(mem[kind], res)
			}
			fmt.Fprintf(out, "memory round %d/%d done (%.0fs)\n", r+1, cfg.memRounds, time.Since(start).Seconds())
		}
	}

	fmt.Fprintln(out)
	printRates(out, groups, rounds, cfg.dur)
	fmt.Fprintln(out)
	if cfg.memRounds > 0 {
		printMemory(out, mem, cfg.sockets)
		fmt.Fprintln(out)
	}
	printRatios(out, rt1, rt64, hs, ref, mem)
	fmt.Fprintf(out, "\nfresh tokens: %d handshakes each with a token of its own (reused: one token per server, served from wssec's verified-token cache after the first)\n", fresh.Taken())
	if share > 0 {
		fmt.Fprintf(out, "\nthis process used %.0f%% of the machine's CPU time during the rounds (the rest went to other processes or idled)\n", share*100)
	}
	fmt.Fprintf(out, "\nload average at end: %s; wall time %.0fs\n", loadavg(), time.Since(start).Seconds())
	return nil
}

// checkGoroutines waits briefly for every goroutine this run started to
// end and fails if some are left.
func checkGoroutines(out io.Writer, before int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			fmt.Fprintf(out, "goroutines: %d at start, %d at end (all servers and clients stopped)\n", before, n)
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			os.Stderr.Write(buf)
			return fmt.Errorf("%d goroutines left running (%d at start)", n, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratios divides a by b round by round.
func ratios(a, b []float64) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		if b[i] > 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

func printMachine(out io.Writer, cfg config, fds uint64) {
	mode := "full"
	if cfg.quick {
		mode = "quick"
	}
	fmt.Fprintf(out, "wssec bench/compare (%s): %d rounds × %v per workload and server; memory %d round(s) × %d sockets\n",
		mode, cfg.rounds, cfg.dur, cfg.memRounds, cfg.sockets)
	fmt.Fprintf(out, "machine: %s, %d CPUs, GOMAXPROCS %d, %s %s/%s, open-file limit %d, load average %s\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, fds, loadavg())
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func printRates(out io.Writer, groups []*group, rounds int, dur time.Duration) {
	fmt.Fprintf(out, "Throughput: median over %d rounds of %v, with the interquartile range; CPU: process (client+server) CPU time per operation, median\n", rounds, dur)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tserver\tmedian\tIQR\tCPU/op\t")
	for _, g := range groups {
		for _, m := range g.members {
			q1, q3 := quartiles(m.rates)
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s–%s\t%.1f µs\t\n", g.name, m.label, num(median(m.rates)), g.unit, num(q1), num(q3), median(m.cpu)*1e6)
		}
	}
	tw.Flush()
}

// quartiles returns the first and third quartiles of xs.
func quartiles(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	at := func(p float64) float64 {
		pos := p * float64(len(s)-1)
		i := int(pos)
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		return s[i] + (pos-float64(i))*(s[i+1]-s[i])
	}
	return at(0.25), at(0.75)
}

func printMemory(out io.Writer, mem map[bench.Kind][]bench.MemResult, sockets int) {
	fmt.Fprintf(out, "Server memory per socket (HeapInuse+StackInuse delta after GC, server in a child process, %d sockets; median over rounds)\n", sockets)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tidle: heap\tstack\ttotal\tgoroutines\tafter 1 msg: heap\tstack\ttotal\t")
	for _, k := range append(append(slices.Clone(bench.Kinds), bench.RawWriter), bench.Peers...) {
		rs := mem[k]
		pick := func(f func(bench.MemResult) float64) float64 {
			var xs []float64
			for _, r := range rs {
				xs = append(xs, f(r))
			}
			return median(xs)
		}
		fmt.Fprintf(tw, "%s\t%s B\t%s B\t%s B\t%.1f\t%s B\t%s B\t%s B\t\n", k,
			num(pick(func(r bench.MemResult) float64 { return r.Idle.Heap })),
			num(pick(func(r bench.MemResult) float64 { return r.Idle.Stack })),
			num(pick(func(r bench.MemResult) float64 { return r.Idle.Total() })),
			pick(func(r bench.MemResult) float64 { return r.Idle.Goroutines }),
			num(pick(func(r bench.MemResult) float64 { return r.Used.Heap })),
			num(pick(func(r bench.MemResult) float64 { return r.Used.Stack })),
			num(pick(func(r bench.MemResult) float64 { return r.Used.Total() })))
	}
	tw.Flush()
}

// row is one line of the ratio table.
type row struct {
	metric, ratio string
	values        []float64 // per-round ratios
	cpu           []float64 // per-round ratios of CPU per op, inverted so that they read like values
	target        float64   // 0: none
	atMost        bool      // the target is an upper bound
}

func printRatios(out io.Writer, rt1, rt64, hs, ref *group, mem map[bench.Kind][]bench.MemResult) {
	// r is the throughput ratio a/b; c is the same comparison by CPU cost,
	// (CPU per op of b)/(CPU per op of a), so that both read "higher is
	// better for a".
	type pair struct{ r, c []float64 }
	rc := func(ga *group, a string, gb *group, b string) pair {
		return pair{ratios(ga.get(a).rates, gb.get(b).rates), ratios(gb.get(b).cpu, ga.get(a).cpu)}
	}
	var rows []row
	add := func(metric, ratio string, p pair, target float64) {
		rows = append(rows, row{metric: metric, ratio: ratio, values: p.r, cpu: p.c, target: target})
	}
	for _, g := range []*group{rt1, rt64} {
		add(g.name+" throughput", "wssec/raw", rc(g, "wssec", g, "raw"), 0.95)
		add(g.name+" throughput", "wssec/hand-rolled", rc(g, "wssec", g, "hand-rolled"), 1.2)
		add(g.name+" throughput", "(peer) gws/raw", rc(g, "gws", g, "raw"), 0)
		add(g.name+" throughput", "(peer) coder/raw", rc(g, "coder", g, "raw"), 0)
		add(g.name+" throughput", "wssec/gws", rc(g, "wssec", g, "gws"), 0)
		add(g.name+" throughput", "wssec/coder", rc(g, "wssec", g, "coder"), 0)
		add(g.name+" throughput", "hand-rolled/raw", rc(g, "hand-rolled", g, "raw"), 0)
		add(g.name+" throughput", "(diag) raw+writer/raw", rc(g, "raw+writer", g, "raw"), 0)
		add(g.name+" throughput", "(diag) wssec/raw+writer", rc(g, "wssec", g, "raw+writer"), 0)
	}
	add("accepted handshakes/s, ES256 fresh", "wssec/raw", rc(hs, "wssec ES256 fresh", hs, "raw"), 0.58)
	add("accepted handshakes/s, ES256 fresh", "wssec/hand-rolled", rc(hs, "wssec ES256 fresh", hs, "hand-rolled ES256"), 0)
	add("accepted handshakes/s, ES256 reused", "wssec/raw", rc(hs, "wssec ES256 reused", hs, "raw"), 0.95)
	add("accepted handshakes/s, ES256 reused", "wssec/hand-rolled", rc(hs, "wssec ES256 reused", hs, "hand-rolled ES256"), 0)
	add("accepted handshakes/s, ES256", "hand-rolled/raw", rc(hs, "hand-rolled ES256", hs, "raw"), 0)
	add("accepted handshakes/s, EdDSA reused", "wssec/raw", rc(hs, "wssec EdDSA reused", hs, "raw"), 0)
	add("accepted handshakes/s, HS256 reused", "wssec/raw", rc(hs, "wssec HS256 reused", hs, "raw"), 0)
	add("refused handshakes/s, bad origin", "wssec/hand-rolled", rc(ref, "wssec bad origin", ref, "hand-rolled bad origin"), 0)
	add("refused handshakes/s, bad token", "wssec/hand-rolled", rc(ref, "wssec bad token", ref, "hand-rolled bad token"), 0)
	add("refused handshakes/s, rate-limited", "wssec 429s/raw accepts", rc(ref, "wssec rate-limited", hs, "raw"), 0)
	if len(mem[bench.Raw]) > 0 {
		m := func(k bench.Kind, used bool) []float64 {
			var xs []float64
			for _, r := range mem[k] {
				if used {
					xs = append(xs, r.Used.Total())
				} else {
					xs = append(xs, r.Idle.Total())
				}
			}
			return xs
		}
		for _, used := range []bool{false, true} {
			name, target := "idle memory per socket", 0.6
			if used {
				name, target = "memory per socket after 1 msg", 1.0
			}
			rows = append(rows,
				row{metric: name, ratio: "wssec/raw", values: ratios(m(bench.WSSec, used), m(bench.Raw, used)), target: target, atMost: true},
				row{metric: name, ratio: "(peer) gws/raw", values: ratios(m(bench.Gws, used), m(bench.Raw, used))},
				row{metric: name, ratio: "(peer) coder/raw", values: ratios(m(bench.Coder, used), m(bench.Raw, used))},
				row{metric: name, ratio: "wssec/hand-rolled", values: ratios(m(bench.WSSec, used), m(bench.HandRolled, used))},
				row{metric: name, ratio: "hand-rolled/raw", values: ratios(m(bench.HandRolled, used), m(bench.Raw, used))},
				row{metric: name, ratio: "(diag) raw+writer/raw", values: ratios(m(bench.RawWriter, used), m(bench.Raw, used))},
			)
		}
	}
	fmt.Fprintln(out, "Ratios: median of per-round ratios, interquartile range; \"by CPU\" compares CPU time per op the same way (higher is cheaper for the first)")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tratio\tmedian\tIQR\tby CPU\ttarget\tverdict\t")
	anyNoisy := false
	for _, x := range rows {
		target, verdict := "–", ""
		med := median(x.values)
		q1, q3 := quartiles(x.values)
		if x.target > 0 {
			if x.atMost {
				target = fmt.Sprintf("≤ %.2f", x.target)
				verdict = pass(med <= x.target)
			} else {
				target = fmt.Sprintf("≥ %.2f", x.target)
				verdict = pass(med >= x.target)
			}
			if q3-q1 > noisy*med {
				verdict += "?"
				anyNoisy = true
			}
		}
		cpu := "–"
		if len(x.cpu) > 0 {
			cpu = fmt.Sprintf("%.2f", median(x.cpu))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f–%.2f\t%s\t%s\t%s\t\n", x.metric, x.ratio, med, q1, q3, cpu, target, verdict)
	}
	tw.Flush()
	if anyNoisy {
		fmt.Fprintf(out, "?: the rounds disagree (IQR wider than %.0f%% of the median); the machine was too busy for that throughput ratio: rerun, or read the by-CPU column\n", noisy*100)
	}
}

// noisy is the IQR, relative to the median, beyond which a ratio's
// verdict is marked as unreliable.
const noisy = 0.3

func pass(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// num prints a number with thousands separators and no decimals.
func num(f float64) string {
	neg := f < 0
	if neg {
		f = -f
	}
	s := fmt.Sprintf("%.0f", f)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
