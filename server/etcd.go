package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// EtcdConfig says where state lives: an embedded single-member etcd under
// DataDir (the default), or an external cluster when Endpoints is set.
type EtcdConfig struct {
	Endpoints []string
	CACert    string // PEM file; enables TLS
	Cert      string // client certificate PEM file
	Key       string // client key PEM file
}

// etcdBackend is an open etcd client plus whatever must be closed after it.
type etcdBackend struct {
	Client   *clientv3.Client
	embedded *embed.Etcd
}

// Close closes the client before the embedded server: the other order makes
// embed.Etcd.Close wait about seven seconds for the client's streams.
func (b *etcdBackend) Close() error {
	err := b.Client.Close()
	if errors.Is(err, context.Canceled) {
		err = nil // how an in-process (v3client) client reports a normal close
	}
	if b.embedded != nil {
		b.embedded.Close()
	}
	return err
}

func openEtcd(ctx context.Context, cfg EtcdConfig, dataDir string, log *zap.Logger) (*etcdBackend, error) {
	if len(cfg.Endpoints) > 0 {
		return dialEtcd(ctx, cfg)
	}
	return startEmbeddedEtcd(ctx, filepath.Join(dataDir, "etcd"), log)
}

func dialEtcd(ctx context.Context, cfg EtcdConfig) (*etcdBackend, error) {
	ccfg := clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second}
	if cfg.CACert != "" || cfg.Cert != "" {
		tc, err := etcdTLS(cfg)
		if err != nil {
			return nil, err
		}
		ccfg.TLS = tc
	}
	cli, err := clientv3.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", cfg.Endpoints, err)
	}
	// clientv3.New does not wait for a connection; fail fast and clearly instead
	// of on the first API call.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Status(sctx, cfg.Endpoints[0]); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd at %s is not reachable: %w", cfg.Endpoints[0], err)
	}
	return &etcdBackend{Client: cli}, nil
}

func etcdTLS(cfg EtcdConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("read --etcd-cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-cacert %s holds no PEM certificate", cfg.CACert)
		}
		tc.RootCAs = pool
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, errors.New("--etcd-cert and --etcd-key must be given together")
	}
	if cfg.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("load etcd client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// startEmbeddedEtcd runs a single-member etcd in this process. Its listeners
// use free loopback ports (nothing outside this process needs them: the
// client talks to the server in-process through v3client). A port found free
// can be taken by another process before etcd binds it, so a bind failure
// is retried with new ports.
func startEmbeddedEtcd(ctx context.Context, dir string, log *zap.Logger) (*etcdBackend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		be, err := startEmbeddedEtcdOnce(ctx, dir, log)
		inUse := err != nil && (errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use"))
		if !inUse || attempt == 5 {
			return be, err
		}
	}
}

func startEmbeddedEtcdOnce(ctx context.Context, dir string, log *zap.Logger) (*etcdBackend, error) {
	peer, err := freeLoopbackURL()
	if err != nil {
		return nil, err
	}
	client, err := freeLoopbackURL()
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "gantry"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(log.Named("etcd"))
	// A single member has no peers to wait for: short ticks make it leader
	// in tens of milliseconds instead of seconds.
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Metrics = "basic"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("embedded etcd did not become ready within 60s")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	return &etcdBackend{Client: v3client.New(e.Server), embedded: e}, nil
}

func freeLoopbackURL() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	return &url.URL{Scheme: "http", Host: addr}, nil
}
