// Command thrusim serves a simulated Thru MFT site (package
// testkit/thrusim) over HTTP.
//
//	thrusim --listen 127.0.0.1:8480 --config site.yaml --pickup-dir ./pickup
//
// Flags:
//
//	--listen ADDR      address to listen on (default 127.0.0.1:8480)
//	--config FILE      YAML or JSON site config: site_url, site_access_key,
//	                   aes_key, cipher_mode, iv, flows (code, name,
//	                   secret_key, pickup_delay, endpoints, sender), api_keys,
//	                   bearer_tokens, timestamp_window, pickup_delay,
//	                   max_chunk_size, dropoff_max_chunk_size, spool_dir
//	                   (where content is kept; default a temporary
//	                   directory removed on exit)
//	--pickup-dir DIR   files put here are queued for pickup and removed:
//	                   files at the top go to the first flow, files in
//	                   DIR/<FlowCode>/ to that flow; scanned every second
//	--admin            serve the admin endpoints under /_admin/ (default true)
//	--spool-dir DIR    where content is kept, over the config's spool_dir;
//	                   give one to a simulator that may be killed, which
//	                   cannot remove its temporary directory
//
// It prints the base URL on standard output once it listens, and stops on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8480", "address to listen on")
	config := flag.String("config", "", "YAML or JSON site config file")
	pickupDir := flag.String("pickup-dir", "", "directory whose files are queued for pickup")
	admin := flag.Bool("admin", true, "serve the admin endpoints under /_admin/")
	spool := flag.String("spool-dir", "", "directory for what the site receives (over the config's spool_dir; default: a temporary one, removed on exit)")
	flag.Parse()
	if err := run(*listen, *config, *pickupDir, *spool, *admin); err != nil {
		log.SetFlags(0)
		log.Fatalf("thrusim: %v", err)
	}
}

func run(listen, config, pickupDir, spool string, admin bool) error {
	var cfg thrusim.Config
	if config != "" {
		c, err := thrusim.LoadConfig(config)
		if err != nil {
			return err
		}
		cfg = c
	}
	cfg.Admin = admin
	if spool != "" {
		cfg.SpoolDir = spool
	}
	site, err := thrusim.New(cfg)
	if err != nil {
		return err
	}
	defer site.Close() // removes its temporary spool directory
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: site, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if pickupDir != "" && len(cfg.Flows) > 0 {
		go feedPickups(ctx, site, cfg, pickupDir)
	}
	fmt.Printf("http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// feedPickups queues the files of dir for pickup every second, removing them.
func feedPickups(ctx context.Context, site *thrusim.Server, cfg thrusim.Config, dir string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		take(site, cfg.Flows[0].Code, dir)
		for _, f := range cfg.Flows {
			take(site, f.Code, filepath.Join(dir, f.Code))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func take(site *thrusim.Server, flow, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			log.Printf("thrusim: pickup-dir: %v", err)
			continue
		}
		code, err := site.AddPickupFrom(flow, e.Name(), f)
		discard.Close(f)
		if err != nil {
			log.Printf("thrusim: pickup-dir: %v", err)
			continue
		}
		if err := os.Remove(p); err != nil {
			log.Printf("thrusim: pickup-dir: %v", err)
		}
		log.Printf("thrusim: queued %s for pickup on flow %s as %s", e.Name(), flow, code)
	}
}
