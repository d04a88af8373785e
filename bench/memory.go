package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
)

// ChildEnv names the environment variable that turns a process into the
// server half of an idle-memory measurement; its value is the Kind.
//
// The server runs in a child process so that its runtime.MemStats hold
// the server's share alone: the 4 000 client sockets, their buffers and
// the client's own heap live in the parent and never blur the numbers.
const ChildEnv = "WSSEC_BENCH_MEMCHILD"

// HeapProfileEnv, when set to a path prefix, makes MeasureIdleMemory's
// child record every allocation and write the heap profile of the idle
// sockets to <prefix>.<kind> (read it with go tool pprof
// -sample_index=inuse_space), and the profile before the sockets opened
// to <prefix>.<kind>.base, for -diff_base. The numbers measured are
// unchanged: profile records live outside the Go heap.
const HeapProfileEnv = "WSSEC_BENCH_HEAPPROFILE"

// RunChildIfAsked serves as a memory-measurement child if ChildEnv is set,
// and then reports true: the caller (a main or a TestMain) must exit.
// Otherwise it does nothing and reports false.
func RunChildIfAsked() bool {
	kind := os.Getenv(ChildEnv)
	if kind == "" {
		return false
	}
	if err := runChild(Kind(kind), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	return true
}

// runChild starts a server of kind, prints "ready <addr> <token>", and
// answers each "mem" line with "mem <HeapInuse> <StackInuse> <goroutines>
// <live sockets>" measured after two forced collections. It stops the
// server and returns when in ends.
func runChild(kind Kind, in io.Reader, out io.Writer) error {
	if _, err := RaiseFDLimit(1 << 20); err != nil {
		return err
	}
	profile := os.Getenv(HeapProfileEnv)
	if profile != "" {
		runtime.MemProfileRate = 1
	}
	key, err := NewKey(ES256)
	if err != nil {
		return err
	}
	tok, err := key.Token(10 * time.Minute)
	if err != nil {
		return err
	}
	s, err := Start(kind, Options{Key: key})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(out, "ready %s %s\n", s.Addr, tok)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if suffix, ok := strings.CutPrefix(sc.Text(), "profile"); ok && profile != "" {
			if err := writeHeapProfile(profile + "." + string(kind) + suffix); err != nil {
				return err
			}
			fmt.Fprintln(out, "profiled")
			continue
		}
		if sc.Text() != "mem" {
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(out, "mem %d %d %d %d\n", ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine(), s.Live())
	}
	return sc.Err()
}

func writeHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// memSample is one "mem" answer.
type memSample struct {
	heap, stack      uint64
	goroutines, live int64
}

// MemResult is the server's memory per idle socket.
type MemResult struct {
	Kind    Kind
	Sockets int
	// Idle: after the handshake only. Used: after one round trip on each
	// socket, when per-connection buffers that a first message allocates
	// are held too.
	Idle, Used MemPerSocket
}

// MemPerSocket is a HeapInuse+StackInuse delta after GC divided by the
// number of sockets.
type MemPerSocket struct {
	Heap, Stack float64 // bytes per socket
	Goroutines  float64 // goroutines per socket
}

// Total is heap + stack bytes per socket.
func (m MemPerSocket) Total() float64 { return m.Heap + m.Stack }

func perSocket(a, b memSample, n int) MemPerSocket {
	f := float64(n)
	return MemPerSocket{
		Heap:       (float64(b.heap) - float64(a.heap)) / f,
		Stack:      (float64(b.stack) - float64(a.stack)) / f,
		Goroutines: float64(b.goroutines-a.goroutines) / f,
	}
}

// child is a running measurement child.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	target Target
	token  string
}

func startChild(ctx context.Context, exe string, kind Kind) (*child, error) {
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), ChildEnv+"="+string(kind))
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	f, err := c.line("ready", 3)
	if err != nil {
		c.stop()
		return nil, err
	}
	c.target = Target{Kind: kind, Addr: f[1], URL: "ws://" + f[1] + "/ws"}
	c.token = f[2]
	return c, nil
}

func (c *child) line(word string, fields int) ([]string, error) {
	if !c.lines.Scan() {
		if err := c.lines.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("bench: child exited early")
	}
	f := strings.Fields(c.lines.Text())
	if len(f) != fields || f[0] != word {
		return nil, fmt.Errorf("bench: child said %q", c.lines.Text())
	}
	return f, nil
}

func (c *child) mem() (memSample, error) {
	if _, err := io.WriteString(c.stdin, "mem\n"); err != nil {
		return memSample{}, err
	}
	f, err := c.line("mem", 5)
	if err != nil {
		return memSample{}, err
	}
	var m memSample
	_, err = fmt.Sscan(strings.Join(f[1:], " "), &m.heap, &m.stack, &m.goroutines, &m.live)
	return m, err
}

// waitLive polls until the child holds live sockets, for at most d.
func (c *child) waitLive(live int64, d time.Duration) (memSample, error) {
	deadline := time.Now().Add(d)
	for {
		m, err := c.mem()
		if err != nil || m.live == live {
			return m, err
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("bench: child holds %d sockets, want %d", m.live, live)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// profile asks the child for a heap profile if HeapProfileEnv is set.
func (c *child) profile(suffix string) error {
	if os.Getenv(HeapProfileEnv) == "" {
		return nil
	}
	if _, err := io.WriteString(c.stdin, "profile"+suffix+"\n"); err != nil {
		return err
	}
	_, err := c.line("profiled", 1)
	return err
}

// stop closes the child's stdin, which stops its server, and waits for it
// to exit (killing it after a grace period).
func (c *child) stop() error {
	c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		return errors.Join(errors.New("bench: child did not stop; killed"), <-done)
	}
}

// MeasureIdleMemory starts exe as a child serving kind (exe must call
// RunChildIfAsked first thing), opens sockets client sockets to it from
// this process and reports the server's heap and stack per socket. The
// caller must allow this process sockets+256 open files.
func MeasureIdleMemory(ctx context.Context, exe string, kind Kind, sockets int) (res MemResult, err error) {
	res = MemResult{Kind: kind, Sockets: sockets}
	c, err := startChild(ctx, exe, kind)
	if err != nil {
		return res, err
	}
	var clients []*Client
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
		if serr := c.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	header := AcceptHeader(kind, c.token)

	// Warm up: code paths, pools and the runtime's own structures.
	for i := 0; i < 32; i++ {
		cl, err := Dial(ctx, c.target, header)
		if err != nil {
			return res, err
		}
		err = cl.RoundTrip()
		cl.Close()
		if err != nil {
			return res, err
		}
	}
	base, err := c.waitLive(0, 10*time.Second)
	if err != nil {
		return res, err
	}
	if err := c.profile(".base"); err != nil {
		return res, err
	}

	clients = make([]*Client, sockets)
	if err := parallel(sockets, HandshakeWorkers, func(i int) error {
		cl, err := Dial(ctx, c.target, header)
		clients[i] = cl
		return err
	}); err != nil {
		return res, err
	}
	idle, err := c.waitLive(int64(sockets), 30*time.Second)
	if err != nil {
		return res, err
	}
	res.Idle = perSocket(base, idle, sockets)
	if err := c.profile(""); err != nil {
		return res, err
	}

	if err := parallel(sockets, HandshakeWorkers, func(i int) error { return clients[i].RoundTrip() }); err != nil {
		return res, err
	}
	used, err := c.mem()
	if err != nil {
		return res, err
	}
	res.Used = perSocket(base, used, sockets)
	return res, nil
}

// parallel runs f(0..n-1) on workers goroutines and returns the first
// error; after an error the remaining indexes are skipped.
func parallel(n, workers int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
