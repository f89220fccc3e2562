package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gantry-dev/gantry/cli/cliflags"
	"github.com/gantry-dev/gantry/server"
)

func runServer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs)
	var endpoints string
	var etcd server.EtcdConfig
	fs.StringVar(&endpoints, "etcd-endpoints", "", "comma-separated external etcd endpoints (default: embedded etcd in --data-dir)")
	fs.StringVar(&etcd.CACert, "etcd-cacert", "", "CA certificate for the external etcd (PEM)")
	fs.StringVar(&etcd.Cert, "etcd-cert", "", "client certificate for the external etcd (PEM)")
	fs.StringVar(&etcd.Key, "etcd-key", "", "client key for the external etcd (PEM)")
	if code := cliflags.Parse(fs, args, stderr); code >= 0 {
		return code
	}
	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			etcd.Endpoints = append(etcd.Endpoints, e)
		}
	}
	return serve("server", sf, etcd, nil, stdout, stderr)
}

// extension runs next to a started control plane (gantry dev's agent): it
// returns a line for the banner and a function that stops it.
type extension func(ctx context.Context, srv *server.Server, sf serverFlags, endpoint string, log *slog.Logger) (status string, stop func())

// serve runs a control plane, and ext if not nil, until SIGINT or SIGTERM.
func serve(mode string, sf serverFlags, etcd server.EtcdConfig, ext extension, stdout, stderr io.Writer) int {
	log, err := sf.logger(stderr)
	if err == nil {
		err = sf.check()
	}
	if err != nil {
		fmt.Fprintf(stderr, "gantry %s: %v\n", mode, err)
		return 2
	}
	dataDir, err := filepath.Abs(sf.dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "gantry %s: %v\n", mode, err)
		return 1
	}
	sf.dataDir = dataDir
	kp, generated, err := ensureCredentials(sf.dataDir, keyPair{sf.accessKeyID, sf.secretAccessKey})
	if err != nil {
		fmt.Fprintf(stderr, "gantry %s: %v\n", mode, err)
		return 1
	}
	sf.accessKeyID, sf.secretAccessKey = kp.id, kp.secret

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := sf.config(log)
	cfg.Etcd = etcd
	srv, err := server.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "gantry %s: %v\n", mode, err)
		return 2
	}
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "gantry %s: %v\n", mode, err)
		return 1
	}
	endpoint := clientURL(srv.Addr())
	status, stopExt := "", func() {}
	if ext != nil {
		status, stopExt = ext(ctx, srv, sf, endpoint, log)
	}
	printBanner(stdout, mode, sf, endpoint, generated, etcd, status)
	err = srv.Wait(ctx)
	fmt.Fprintln(stderr, "gantry: shutting down")
	stopExt()
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "gantry %s: %v\n", mode, err)
		return 1
	}
	return 0
}

// clientURL is the URL a local client should use for a listen address; an
// unspecified host (0.0.0.0, ::) is reached through loopback.
func clientURL(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// printBanner writes the start-up banner in one write, so a reader that
// sees its first line sees all of it.
func printBanner(out io.Writer, mode string, sf serverFlags, endpoint string, generated bool, etcd server.EtcdConfig, status string) {
	w := new(bytes.Buffer)
	defer func() {
		if status != "" {
			fmt.Fprintf(w, "\n%s\n", status)
		}
		out.Write(w.Bytes())
	}()
	store := "embedded etcd in " + filepath.Join(sf.dataDir, "etcd")
	if len(etcd.Endpoints) > 0 {
		store = "etcd at " + strings.Join(etcd.Endpoints, ",")
	}
	fmt.Fprintf(w, "Gantry %s %s is ready.\n", mode, Version)
	fmt.Fprintf(w, "  ECS API:  %s  (region %s, account %s)\n", endpoint, sf.region, sf.accountID)
	fmt.Fprintf(w, "  State:    %s\n", store)
	if generated {
		cfgPath, err := writeCLIConfig(sf.dataDir, sf.region, endpoint)
		if err != nil {
			fmt.Fprintf(w, "  (could not write the AWS CLI config: %v)\n", err)
			return
		}
		fmt.Fprintf(w, "\nCredentials are in %s. Point the AWS CLI at them:\n\n", filepath.Join(sf.dataDir, "credentials"))
		fmt.Fprintf(w, "  export AWS_SHARED_CREDENTIALS_FILE=%s AWS_CONFIG_FILE=%s\n", filepath.Join(sf.dataDir, "credentials"), cfgPath)
		fmt.Fprintf(w, "  export AWS_PROFILE=%s\n\n", profile)
		fmt.Fprintf(w, "then, for example:  aws ecs list-clusters --endpoint-url %s\n", endpoint)
	} else {
		fmt.Fprintf(w, "  Auth:     SigV4 with access key %s\n", sf.accessKeyID)
	}
}
