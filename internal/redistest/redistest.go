// Package redistest starts real redis-server processes for tests, on free
// loopback ports, and stops them by their PID. Tests of wssec's Redis
// store and of the examples that use it share it.
package redistest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Start returns the address of a Redis server for t. When
// WSSEC_REDIS_ADDR is set it returns that address, and stop and restart
// skip the test (an external server is not ours to stop). Otherwise it
// starts its own redis-server on a free loopback port, without
// persistence, waits until it answers PING (10 s at most) and kills it by
// its PID when t ends. stop kills it mid-test (it then refuses
// connections); restart starts it again on the same port, empty. Each
// call starts a separate server, so tests that stop one disturb no other.
//
// Without redis-server on PATH the test is skipped, or fails when the
// environment has CI=true.
func Start(t testing.TB) (addr string, stop func(), restart func()) {
	t.Helper()
	if addr := os.Getenv("WSSEC_REDIS_ADDR"); addr != "" {
		external := func() {
			t.Helper()
			t.Skip("WSSEC_REDIS_ADDR is set: an external Redis cannot be stopped or restarted by the test")
		}
		return addr, external, external
	}
	p := StartProc(t)
	return p.Addr(), p.Stop, p.Restart
}

// StartProc starts a redis-server for t as Start does (without
// looking at WSSEC_REDIS_ADDR) and returns the process, for tests that
// need more control than stop and restart (pausing it, for one).
func StartProc(t testing.TB) *Proc {
	t.Helper()
	return startProc(t)
}

// startProc starts a redis-server with extra arguments.
func startProc(t testing.TB, extra ...string) *Proc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found on PATH (CI=true, so this fails instead of skipping): %v", err)
		}
		t.Skip("redis-server not found on PATH; install it (apt-get install redis-server) or set WSSEC_REDIS_ADDR")
	}
	p := &Proc{t: t, bin: bin, dir: t.TempDir(), extra: extra}
	t.Cleanup(p.Stop)
	var lastErr error
	for range 3 { // a free port can be taken between choosing and binding it
		if p.port, lastErr = freePort(); lastErr != nil {
			continue
		}
		if lastErr = p.start(); lastErr == nil {
			return p
		}
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

// Proc is one redis-server child process, stopped by its PID.
type Proc struct {
	t     testing.TB
	bin   string
	dir   string
	port  string
	extra []string // more redis-server arguments

	mu   sync.Mutex // guards the fields below
	cmd  *exec.Cmd
	done chan error // receives cmd.Wait's result
	runs int
}

// Addr is the server's address, host:port on loopback.
func (p *Proc) Addr() string { return net.JoinHostPort("127.0.0.1", p.port) }

// start launches the server and waits until it answers PING.
func (p *Proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runs++
	logf, err := os.Create(filepath.Join(p.dir, "redis-"+strconv.Itoa(p.runs)+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append([]string{
		"--port", p.port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", p.dir, "--daemonize", "no"}, p.extra...)
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // ends when the process does
	addr := net.JoinHostPort("127.0.0.1", p.port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(addr) == nil {
			p.cmd, p.done = cmd, done
			return nil
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(logf.Name())
			return &startError{err: err, log: string(log)}
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return &startError{err: os.ErrDeadlineExceeded}
		}
	}
}

type startError struct {
	err error
	log string
}

func (e *startError) Error() string {
	return "redis-server did not answer PING: " + e.err.Error() + "\n" + e.log
}

// Stop kills the server by its PID and reaps it; it does nothing when the
// server is not running.
func (p *Proc) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd, p.done = nil, nil
}

// Signal sends sig to the running server (SIGSTOP makes it hang with its
// connections open; SIGCONT resumes it).
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.t.Fatal("redis-server is not running")
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signalling redis-server: %v", err)
	}
}

// Restart starts the server again on the same port.
func (p *Proc) Restart() {
	p.t.Helper()
	p.Stop()
	var err error
	for range 20 { // the port may linger for a moment after the kill
		if err = p.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("restarting redis-server on port %s: %v", p.port, err)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// ping sends PING over a fresh connection and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return &startError{err: os.ErrInvalid, log: line}
	}
	return nil
}

// StartCluster starts a Redis Cluster of n primaries (n ≥ 3) on free
// loopback ports, joined with redis-cli and its 16 384 slots spread over
// them, and returns their addresses once every node reports the cluster
// ok. Each node is stopped by its PID when t ends. Without redis-server
// or redis-cli the test is skipped, or fails when CI=true.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-cli not found on PATH (CI=true, so this fails instead of skipping): %v", err)
		}
		t.Skip("redis-cli not found on PATH; install it (apt-get install redis-server)")
	}
	addrs := make([]string, n)
	for i := range addrs {
		p := startProc(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		addrs[i] = p.Addr()
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		for {
			out, _ := exec.Command(cli, "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ok: %s", a, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return addrs
}
