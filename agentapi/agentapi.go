package agentapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/sigv4"
	"github.com/gantry-dev/gantry/state"
)

// DefaultHeartbeatTimeout is how long an agent may stay silent before its
// instance shows agentConnected false and gets no new tasks.
const DefaultHeartbeatTimeout = 10 * time.Second

// DefaultKeepalive is how often a quiet assignments stream carries a
// keepalive; the protocol promises at least one every 15 s.
const DefaultKeepalive = 10 * time.Second

// maxBody bounds request bodies: a registration with many attributes or a
// report on ten containers is a few KiB.
const maxBody = 1 << 20

// Config holds the handler's dependencies.
type Config struct {
	Store *state.Store
	Scope ecs.Scope
	// HeartbeatTimeout is the lease on an instance's connected key
	// (default DefaultHeartbeatTimeout; etcd counts it in whole seconds).
	// Agents are told to heartbeat three times per timeout.
	HeartbeatTimeout time.Duration
	Keepalive        time.Duration // default DefaultKeepalive
	Logger           *slog.Logger
	Now              func() time.Time // default time.Now
	// Verifier authenticates users of LogsPath (SigV4, as the ECS API);
	// nil: that endpoint answers 404.
	Verifier *sigv4.Verifier
}

// Handler serves the agent endpoints.
type Handler struct {
	store     *state.Store
	scope     ecs.Scope
	timeout   time.Duration
	keepalive time.Duration
	log       *slog.Logger
	now       func() time.Time
	mux       *http.ServeMux
	verifier  *sigv4.Verifier
	logs      *logRelay

	done     chan struct{} // closed by Shutdown: streams end
	doneOnce sync.Once

	callersMu sync.Mutex
	callers   map[string]caller // instance token -> the instance it was checked against
}

// caller is an instance a token was checked against. An instance's token
// never changes, so a check holds while its record exists.
type caller struct{ cluster, id string }

// maxCallers bounds the token cache; past it, the cache starts over.
const maxCallers = 1 << 16

// New returns a Handler ready to serve under protocol.PathPrefix, and
// LogsPath for users.
func New(cfg Config) *Handler {
	h := &Handler{
		store:     cfg.Store,
		scope:     cfg.Scope,
		timeout:   cfg.HeartbeatTimeout,
		keepalive: cfg.Keepalive,
		log:       cfg.Logger,
		now:       cfg.Now,
		verifier:  cfg.Verifier,
		logs:      newLogRelay(),
		done:      make(chan struct{}),
		callers:   map[string]caller{},
	}
	if h.timeout <= 0 {
		h.timeout = DefaultHeartbeatTimeout
	}
	if h.keepalive <= 0 {
		h.keepalive = DefaultKeepalive
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("POST "+protocol.PathRegister, h.register)
	h.mux.HandleFunc("POST "+protocol.PathHeartbeat, h.heartbeat)
	h.mux.HandleFunc("GET "+protocol.PathAssignments, h.assignments)
	h.mux.HandleFunc("POST "+protocol.PathTaskState, h.taskState)
	h.mux.HandleFunc("GET "+protocol.PathLogRequests, h.logRequests)
	h.mux.HandleFunc("POST "+protocol.PathLogs+"{id}", h.agentLogs)
	h.mux.HandleFunc("GET "+LogsPath, h.userLogs)
	h.mux.HandleFunc(protocol.PathPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "no agent endpoint "+r.Method+" "+r.URL.Path)
	})
	return h
}

// HeartbeatTimeout is the configured heartbeat timeout.
func (h *Handler) HeartbeatTimeout() time.Duration { return h.timeout }

// ServeHTTP dispatches an agent request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Shutdown ends every assignments stream, so a server shutting down does
// not wait for agents to hang up. Register it with
// http.Server.RegisterOnShutdown.
func (h *Handler) Shutdown() { h.doneOnce.Do(func() { close(h.done) }) }

// Instance tokens name the instance they admit, "gi.<cluster>.<id>.<secret>"
// (cluster names and IDs have no '.'), so a request is authenticated with
// one read of the instance's record, which holds the token's SHA-256.
const instanceTokenPrefix = "gi."

func newInstanceToken(cluster, id string) string {
	var b [32]byte
	rand.Read(b[:])
	return instanceTokenPrefix + cluster + "." + id + "." + base64.RawURLEncoding.EncodeToString(b[:])
}

var errUnauthorized = errors.New("unauthorized")

// instance authenticates a request by its instance token and returns the
// instance it names, registered or deregistered (INACTIVE).
func (h *Handler) instance(r *http.Request) (*state.InstanceRecord, error) {
	return h.instanceByToken(r.Context(), bearer(r))
}

func (h *Handler) instanceByToken(ctx context.Context, tok string) (*state.InstanceRecord, error) {
	rest, ok := strings.CutPrefix(tok, instanceTokenPrefix)
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 3 || ecs.ValidateClusterName(parts[0]) != nil || !ecs.ValidID(parts[1]) {
		return nil, errUnauthorized
	}
	rec, _, err := h.store.GetInstance(ctx, parts[0], parts[1])
	if errors.Is(err, state.ErrNotFound) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(state.HashToken(tok)), []byte(rec.TokenHash)) != 1 {
		return nil, errUnauthorized
	}
	return rec, nil
}

// caller authenticates a request by its instance token like instance, but
// without reading the instance's record when the token was checked before:
// heartbeats and task-state reports, most of the agent traffic, need only
// the instance's name. The caller's handler finds out itself if the record
// has gone since (and calls forget).
func (h *Handler) caller(r *http.Request) (caller, error) {
	tok := bearer(r)
	h.callersMu.Lock()
	c, ok := h.callers[tok]
	h.callersMu.Unlock()
	if ok {
		return c, nil
	}
	rec, err := h.instanceByToken(r.Context(), tok)
	if err != nil {
		return caller{}, err
	}
	c = caller{cluster: rec.Cluster(), id: rec.ID()}
	h.callersMu.Lock()
	if len(h.callers) >= maxCallers {
		clear(h.callers)
	}
	h.callers[tok] = c
	h.callersMu.Unlock()
	return c, nil
}

// forget drops a request's token from the cache: its instance's record is
// gone, so the token no longer admits anyone.
func (h *Handler) forget(r *http.Request) {
	h.callersMu.Lock()
	delete(h.callers, bearer(r))
	h.callersMu.Unlock()
}

func bearer(r *http.Request) string {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(v)
}

// authFailed answers a failed authentication: 401 for a bad token, 500
// (logged) when the store could not be asked.
func (h *Handler) authFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, errUnauthorized) {
		writeError(w, http.StatusUnauthorized, "Unauthorized", "missing or invalid instance token")
		return
	}
	h.internal(w, err)
}

func (h *Handler) internal(w http.ResponseWriter, err error) {
	h.log.Error("agent API", "err", err)
	writeError(w, http.StatusInternalServerError, "Internal", "internal error; see the Gantry server log")
}

// decode reads a JSON body into v.
func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxBody {
		return errors.New("request body too large")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"Internal","message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, protocol.Error{Code: code, Message: msg})
}
