package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agentapi"
	"github.com/gantry-dev/gantry/controller"
	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/ecrapi"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/ecsapi"
	"github.com/gantry-dev/gantry/internal/sigv4"
	"github.com/gantry-dev/gantry/registry"
	"github.com/gantry-dev/gantry/state"
)

// DefaultListen is where the API listens unless told otherwise: loopback
// only, so a fresh `gantry dev` is not reachable from the network.
const DefaultListen = "127.0.0.1:4747"

// Config configures a control plane.
type Config struct {
	Listen    string // host:port; port 0 picks a free one
	DataDir   string // embedded etcd data lives in DataDir/etcd
	Region    string
	AccountID string
	// AccessKeyID and SecretAccessKey are the one key pair the API accepts.
	AccessKeyID     string
	SecretAccessKey string
	Etcd            EtcdConfig
	Logger          *slog.Logger
	// JoinToken admits agents (agent/protocol). Empty means the one in
	// DataDir/join-token, created there (mode 0600) on first start. Its
	// hash is stored in etcd, so every server sharing the etcd cluster
	// accepts it. With no DataDir and no JoinToken this server adds no
	// token of its own but accepts those other servers stored.
	JoinToken string
	// HeartbeatTimeout is how long an agent may miss heartbeats before its
	// instance shows agentConnected false (default 10 s; whole seconds).
	// It is also the instance-loss timeout: the service controller then
	// replaces the instance's service tasks elsewhere (docs/services.md).
	HeartbeatTimeout time.Duration
	// LeaderTTL is how long a server that dies while running the
	// controllers keeps that role before another server sharing the etcd
	// cluster takes over (default 5 s; a server that stops hands it over
	// at once).
	LeaderTTL time.Duration
	// ServicePolicy tunes the service controller (crash-loop backoff).
	ServicePolicy controller.Policy

	// AdvertiseAddress is the host[:port] clients and container engines
	// reach this server at, used in repository URIs and the registry's
	// proxyEndpoint (docs/registry.md). Default: the listen address, with
	// loopback for an unspecified host; the listen port when none is given.
	AdvertiseAddress string
	// TLSCertFile and TLSKeyFile, when both set, make the listen port accept
	// TLS as well as plain HTTP (the first byte of a connection decides), so
	// container engines on other hosts can pull from the registry.
	TLSCertFile, TLSKeyFile string
	// RegistryStorage replaces the registry's default filesystem storage in
	// DataDir/registry with a distribution storage driver, e.g.
	// {"s3": {"bucket": "...", "region": "..."}} (registry.Config.Storage).
	// Servers sharing an etcd cluster must share their registry storage.
	RegistryStorage map[string]map[string]any
}

// Server is a running control plane.
type Server struct {
	cfg     Config
	log     *slog.Logger
	etcd    *etcdBackend
	store   *state.Store
	ln      net.Listener
	http    *http.Server
	handler http.Handler
	ready   atomic.Bool
	serveCh chan error
	joinTok string

	registry     *registry.Registry
	registryHost string

	leader          *controller.Leader
	stopControllers context.CancelFunc
	controllersDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// New checks cfg and returns a server that is not yet started.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "000000000000"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, errors.New("an access key ID and secret access key are required")
	}
	if cfg.DataDir == "" && len(cfg.Etcd.Endpoints) == 0 {
		return nil, errors.New("a data directory is required for the embedded etcd")
	}
	if !validAccountID(cfg.AccountID) {
		return nil, fmt.Errorf("account ID %q must be 12 digits", cfg.AccountID)
	}
	if cfg.DataDir == "" && len(cfg.RegistryStorage) == 0 {
		return nil, errors.New("a data directory or registry storage is required for the built-in registry")
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("a TLS certificate and key go together")
	}
	if err := validAdvertiseAddress(cfg.AdvertiseAddress); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Logger}, nil
}

func validAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Start opens the store, binds the listener and serves in the background; it
// returns once the API answers. Close stops everything.
func (s *Server) Start(ctx context.Context) error {
	var tlsCfg *tls.Config
	if s.cfg.TLSCertFile != "" {
		var err error
		if tlsCfg, err = loadTLS(s.cfg.TLSCertFile, s.cfg.TLSKeyFile); err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	if tlsCfg != nil {
		ln = newSniffListener(ln, tlsCfg)
	}
	s.ln = ln
	etcdLog := zap.NewNop()
	if s.log.Enabled(ctx, slog.LevelDebug) {
		etcdLog, _ = zap.NewDevelopment()
	}
	start := time.Now()
	be, err := openEtcd(ctx, s.cfg.Etcd, s.cfg.DataDir, etcdLog)
	if err != nil {
		ln.Close()
		return err
	}
	s.etcd = be
	s.store = state.New(be.Client)
	s.log.Debug("store ready", "took", time.Since(start))

	if err := s.setupJoinToken(ctx); err != nil {
		s.etcd.Close()
		s.etcd = nil
		ln.Close()
		return err
	}
	scope := ecs.Scope{Partition: "aws", Region: s.cfg.Region, AccountID: s.cfg.AccountID}
	verifier := &sigv4.Verifier{
		Region:      s.cfg.Region,
		Credentials: sigv4.StaticCredentials{s.cfg.AccessKeyID: s.cfg.SecretAccessKey},
	}
	agents := agentapi.New(agentapi.Config{
		Store:            s.store,
		Scope:            scope,
		HeartbeatTimeout: s.cfg.HeartbeatTimeout,
		Logger:           s.log,
		Verifier:         verifier, // users of agentapi.LogsPath (gantry logs)
	})
	api := ecsapi.New(ecsapi.Config{
		Store:    s.store,
		Scope:    scope,
		Verifier: verifier,
		Logger:   s.log,
	})
	regScope := ecr.Scope{Partition: scope.Partition, Region: scope.Region, AccountID: scope.AccountID}
	reg, err := registry.New(registry.Config{
		RootDirectory: s.registryRoot(),
		Storage:       s.cfg.RegistryStorage,
		Store:         s.store,
		Scope:         regScope,
		Secret:        s.cfg.SecretAccessKey,
		InstanceToken: agents.InstanceTokenValid,
		Logger:        s.log,
	})
	if err != nil {
		s.etcd.Close()
		s.etcd = nil
		ln.Close()
		return err
	}
	s.registry = reg
	s.registryHost = advertisedHost(s.cfg.AdvertiseAddress, ln.Addr().String())
	scheme := "http://"
	if tlsCfg != nil {
		scheme = "https://"
	}
	images := ecrapi.New(ecrapi.Config{
		Store:         s.store,
		Registry:      reg,
		Scope:         regScope,
		Host:          s.registryHost,
		ProxyEndpoint: scheme + s.registryHost,
		Verifier:      verifier,
		Logger:        s.log,
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle(protocol.PathPrefix, agents)
	mux.Handle(agentapi.LogsPath, agents)
	mux.Handle("/v2/", reg)
	mux.Handle("/", awsFront{ecs: api, ecr: images})
	s.handler = mux
	s.http = &http.Server{
		Handler: mux,
		// Connection-level noise (TLS handshakes of port scanners, the
		// registry's double WriteHeader after a client hung up) is debug.
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	// Assignment streams never finish on their own: end them when the
	// server shuts down, so Shutdown does not wait for agents to hang up.
	s.http.RegisterOnShutdown(agents.Shutdown)
	s.serveCh = make(chan error, 1)
	go func() { s.serveCh <- s.http.Serve(ln) }()
	s.startControllers(scope, api)
	s.ready.Store(true)
	return nil
}

// startControllers campaigns for the control plane's leadership and runs
// the controllers while this server holds it, until Close.
func (s *Server) startControllers(scope ecs.Scope, api *ecsapi.API) {
	services := controller.New(controller.Config{
		Store:  s.store,
		Placer: api,
		Scope:  scope,
		Policy: s.cfg.ServicePolicy,
		Logger: s.log,
	})
	s.leader = controller.NewLeader(controller.LeaderConfig{
		Client: s.etcd.Client,
		Prefix: state.ControllersElection,
		ID:     s.Addr(),
		TTL:    s.cfg.LeaderTTL,
		Run:    services.Run,
		Logger: s.log,
	})
	ctx, cancel := context.WithCancel(context.Background())
	s.stopControllers = cancel
	s.controllersDone = make(chan struct{})
	go func() {
		defer close(s.controllersDone)
		s.leader.Run(ctx)
	}()
}

// Leading reports whether this server runs the controllers now (of the
// servers sharing an etcd cluster, one does).
func (s *Server) Leading() bool { return s.leader != nil && s.leader.Leading() }

// setupJoinToken settles the join token (Config.JoinToken) and stores its
// hash so agents can register with it.
func (s *Server) setupJoinToken(ctx context.Context) error {
	tok := s.cfg.JoinToken
	if tok == "" && s.cfg.DataDir != "" {
		var err error
		if tok, err = loadOrCreateJoinToken(filepath.Join(s.cfg.DataDir, "join-token")); err != nil {
			return err
		}
	}
	if tok == "" {
		return nil
	}
	if err := s.store.AddJoinToken(ctx, tok, time.Now()); err != nil {
		return fmt.Errorf("store join token: %w", err)
	}
	s.joinTok = tok
	return nil
}

// loadOrCreateJoinToken reads the token in path, or writes a new random
// one there readable only by its owner.
func loadOrCreateJoinToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read join token: %w", err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	tok := "gj." + base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write join token: %w", err)
	}
	return tok, nil
}

// JoinToken is the token agents join this control plane with ("" when it
// has none of its own; see Config.JoinToken).
func (s *Server) JoinToken() string { return s.joinTok }

// healthz says only whether the server is ready: it is unauthenticated.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "starting\n", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// Addr is the address the API listens on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the API's endpoint URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Handler is the server's HTTP handler, for in-process tests and fuzzing.
func (s *Server) Handler() http.Handler { return s.handler }

// Store exposes the store to in-process components and tests.
func (s *Server) Store() *state.Store { return s.store }

// Wait blocks until the HTTP server fails or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.serveCh:
		return fmt.Errorf("http server: %w", err)
	}
}

// Close stops serving, lets in-flight requests finish for a few seconds, and
// closes the store. Closing again does nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	s.ready.Store(false)
	var errs []error
	if s.stopControllers != nil {
		// Before the API and the store go: the controllers use both, and
		// resigning hands the leadership to another server at once.
		s.stopControllers()
		select {
		case <-s.controllersDone:
		case <-time.After(5 * time.Second):
			s.log.Warn("the controllers did not stop within 5s")
		}
	}
	if s.http != nil {
		// In-flight API calls take milliseconds; assignment streams end on
		// their own when the server's context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.http.Shutdown(ctx); err != nil {
			// Connections still busy (or opened but never used, which net/http
			// counts as busy for its first 5 s) are cut: stopping must not hang on clients.
			s.log.Warn("closing connections that did not finish in time", "err", err)
			s.http.Close()
		}
	} else if s.ln != nil {
		s.ln.Close()
	}
	if s.registry != nil {
		if err := s.registry.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.etcd != nil {
		if err := s.etcd.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
