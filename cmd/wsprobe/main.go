package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/wssec/wssec/internal/probe"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// headers collects repeated -H flags.
type headers http.Header

func (h headers) String() string { return "" }

func (h headers) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want \"Name: value\", got %q", s)
	}
	http.Header(h).Add(strings.TrimSpace(k), strings.TrimSpace(v))
	return nil
}

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsprobe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg probe.Config
	var subprotocols, ca, skip, tokenFile string
	var asJSON bool
	hdr := headers{}
	fs.StringVar(&cfg.URL, "url", "", "the endpoint, ws:// or wss:// (required)")
	fs.StringVar(&cfg.PlainURL, "plain-url", "", "the ws:// twin to try (default: ws:// on port 80 when -url is wss:// on 443)")
	fs.StringVar(&cfg.Origin, "origin", "", "the legitimate page origin (default: the URL's own)")
	fs.StringVar(&cfg.Token, "token", "", "a valid token")
	fs.StringVar(&tokenFile, "token-file", "", "a file of valid tokens of other users, one a line, for the forwarding check")
	fs.StringVar(&cfg.TokenIn, "token-in", "header", "where tokens go: header, subprotocol, cookie:NAME or query:NAME")
	fs.StringVar(&cfg.ExpiredToken, "expired-token", "", "a token past its exp")
	fs.StringVar(&cfg.JWKS, "jwks", "", "the endpoint's JWKS URL")
	fs.StringVar(&subprotocols, "subprotocol", "", "subprotocols to offer, comma-separated")
	fs.Var(hdr, "H", "a header for every handshake, \"Name: value\" (repeatable)")
	fs.StringVar(&cfg.Message, "message", `{"action":"ping","id":"wsprobe"}`, "a message the endpoint answers")
	fs.Int64Var(&cfg.MaxMessage, "max-message", 1<<20, "the largest message the endpoint should accept, in bytes")
	fs.IntVar(&cfg.MaxSockets, "max-sockets", 64, "sockets held at once by the forwarding check")
	fs.IntVar(&cfg.FloodCount, "flood-count", 2000, "messages in the message flood")
	fs.Int64Var(&cfg.SlowReadBytes, "slow-read-bytes", 96<<20, "bytes the slow-reader check writes")
	fs.DurationVar(&cfg.Idle, "idle", 60*time.Second, "how long an idle socket waits for a ping or close; 0 skips")
	fs.DurationVar(&cfg.Budget, "budget", 3*time.Minute, "the whole run's time bound")
	fs.StringVar(&cfg.Source, "source", "", "the local address to connect from")
	fs.StringVar(&ca, "ca", "", "PEM certificates to trust for wss://")
	fs.BoolVar(&cfg.InsecureSkipVerify, "insecure", false, "do not verify the certificate")
	fs.StringVar(&skip, "skip", "", "groups not to run, comma-separated")
	fs.BoolVar(&cfg.OwnTarget, "i-own-this-target", false, "allow a target that is not loopback")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsprobe: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.URL == "" {
		fmt.Fprintln(stderr, "wsprobe: -url is required (go doc github.com/wssec/wssec/cmd/wsprobe)")
		return 2
	}
	cfg.Subprotocols = splitList(subprotocols)
	cfg.Skip = splitList(skip)
	if len(hdr) > 0 {
		cfg.Header = http.Header(hdr)
	}
	if tokenFile != "" {
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "wsprobe: -token-file: %v\n", err)
			return 2
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				cfg.MoreTokens = append(cfg.MoreTokens, l)
			}
		}
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			fmt.Fprintf(stderr, "wsprobe: -ca: %v\n", err)
			return 2
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "wsprobe: -ca: no PEM certificate in %s\n", ca)
			return 2
		}
	}
	rep, err := probe.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if rep.Failed > 0 {
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
