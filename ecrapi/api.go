package ecrapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/internal/sigv4"
	"github.com/gantry-dev/gantry/registry"
	"github.com/gantry-dev/gantry/state"
)

// API serves the ECR JSON 1.1 protocol.
type API struct {
	store *state.Store
	reg   *registry.Registry
	scope ecr.Scope
	host  string // host:port in repository URIs
	proxy string // proxyEndpoint of authorization data
	log   *slog.Logger
	now   func() time.Time
	front awsproto.Service
}

// Config holds API's dependencies.
type Config struct {
	Store    *state.Store
	Registry *registry.Registry
	Scope    ecr.Scope
	// Host is the registry's advertised host:port, the first part of
	// every repository URI.
	Host string
	// ProxyEndpoint is the registry's URL as GetAuthorizationToken reports
	// it ("http://127.0.0.1:4747", or https:// with TLS).
	ProxyEndpoint string
	Verifier      *sigv4.Verifier
	Logger        *slog.Logger
	Now           func() time.Time // default time.Now
}

// New returns an API ready to serve.
func New(cfg Config) *API {
	a := &API{store: cfg.Store, reg: cfg.Registry, scope: cfg.Scope, host: cfg.Host, proxy: cfg.ProxyEndpoint,
		log: cfg.Logger, now: cfg.Now}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.front = awsproto.Service{
		Name: "ECR", TargetPrefix: ecr.TargetPrefix, SigningName: ecr.SigningName,
		Verifier: cfg.Verifier, Ops: map[string]awsproto.Handler{},
		Known: func(name string) bool { _, ok := ecr.Operations[name]; return ok },
	}
	a.registerRepositories()
	a.registerImages()
	a.registerAuth()
	return a
}

// op is awsproto.Op, short for the handler tables.
func op[In, Out any](fn func(context.Context, *In) (*Out, error)) awsproto.Handler {
	return awsproto.Op(fn)
}

func (a *API) handle(name string, h awsproto.Handler) { a.front.Ops[name] = h }

// ServeHTTP answers one API call (awsproto.Service).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.front.ServeHTTP(w, r) }
