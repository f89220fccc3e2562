package ecsapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/internal/sigv4"
	"github.com/gantry-dev/gantry/state"
)

// API serves the ECS JSON 1.1 protocol.
type API struct {
	store   *state.Store
	scope   ecs.Scope
	log     *slog.Logger
	front   awsproto.Service
	taggers map[string]tagger
	// placeLocks holds this server's placement lock and view per cluster
	// (cluster name -> *clusterPlacer; ecsapi/place.go).
	placeLocks sync.Map
}

// Config holds API's dependencies.
type Config struct {
	Store    *state.Store
	Scope    ecs.Scope
	Verifier *sigv4.Verifier
	Logger   *slog.Logger
}

// New returns an API ready to serve.
func New(cfg Config) *API {
	a := &API{store: cfg.Store, scope: cfg.Scope, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.front = awsproto.Service{
		Name: "ECS", TargetPrefix: ecs.TargetPrefix, SigningName: ecs.SigningName,
		Verifier: cfg.Verifier, Ops: map[string]awsproto.Handler{},
		Known: func(name string) bool { _, ok := ecs.Operations[name]; return ok },
	}
	a.registerClusters()
	a.registerTaskDefinitions()
	a.registerInstances()
	a.registerAttributes()
	a.registerTasks()
	a.registerServices()
	a.registerTags()
	return a
}

// op is awsproto.Op, short for the handler tables.
func op[In, Out any](fn func(context.Context, *In) (*Out, error)) awsproto.Handler {
	return awsproto.Op(fn)
}

func (a *API) handle(name string, h awsproto.Handler) { a.front.Ops[name] = h }

// ServeHTTP answers one API call (awsproto.Service).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.front.ServeHTTP(w, r) }
