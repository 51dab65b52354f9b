// Command faultproxy runs the fault-injecting proxy as its own process, for
// trying the binary against faults by hand (tests use the package in
// process):
//
//	faultproxy -target http://127.0.0.1:9000 [-listen 127.0.0.1:0] [-config rules.json]
//
// It prints "listening on http://ADDR" as its first line of output, then
// serves until SIGINT/SIGTERM. The schedule is changed at run time through
// the admin API under /_faultproxy/ (see internal/faultproxy/admin.go).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/storage-initializer/storage-initializer/internal/faultproxy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "faultproxy:", err)
		os.Exit(1)
	}
}

func run() error {
	target := flag.String("target", "", "backend URL, e.g. http://127.0.0.1:9000")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	cfgFile := flag.String("config", "", "JSON file with the initial fault schedule (faultproxy.Config)")
	flag.Parse()
	var cfg faultproxy.Config
	if *cfgFile != "" {
		b, err := os.ReadFile(*cfgFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("config %s: %w", *cfgFile, err)
		}
	}
	p, err := faultproxy.New(*target, cfg, faultproxy.WithAdmin())
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		p.Release()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
