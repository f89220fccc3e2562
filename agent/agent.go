package agent

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	rdebug "runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/protocol"
	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/ecs"
)

// Config configures an agent.
type Config struct {
	Server  string          // the control plane's URL (the API's endpoint)
	Cluster string          // cluster name or ARN to join
	Token   string          // join token (the server's <data-dir>/join-token)
	DataDir string          // identity.json lives here; one per agent
	Runtime runtime.Runtime // the container engine

	AvailabilityZone string            // ecs.availability-zone; default "local"
	InstanceType     string            // ecs.instance-type; default "gantry.<runtime>"
	Attributes       map[string]string // custom attributes; override built-ins
	CPU              int               // CPU units to register; 0: 1024 x logical CPUs
	Memory           int               // MiB to register before the reserve; 0: the host's memory
	ReservedMemory   int               // MiB kept back from MEMORY (ECS_RESERVED_MEMORY; ECS's default is 0)
	GPUs             []string          // IDs of the host's GPUs, registered as the GPU resource (ECS_ENABLE_GPU_SUPPORT)

	PullBehavior       PullBehavior      // default PullDefault
	DefaultStopTimeout time.Duration     // default DefaultStopTimeout (30 s)
	Labels             map[string]string // added to every container this agent creates
	// AllowPrivileged lets tasks run privileged containers (and advertises
	// com.amazonaws.ecs.capability.privileged-container); the runtime must
	// allow them too (docker.Policy).
	AllowPrivileged bool
	// TaskCleanupWait is how long a stopped task's containers (and their
	// logs) stay before they are removed (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION;
	// default DefaultTaskCleanupWait, 3 h).
	TaskCleanupWait time.Duration
	// MetadataAddress is where the task metadata endpoint listens
	// (docs/metadata.md): "" means the engine's bridge gateway (the host as
	// containers see it) on port DefaultMetadataPort; "off" disables it; any
	// host:port (port 0: a free one) is used as given, and advertised to
	// containers as the bridge gateway if its host is unspecified (0.0.0.0).
	MetadataAddress string

	Version    string       // agent version for versionInfo
	HTTPClient *http.Client // nil: a default client
	Logger     *slog.Logger // nil: slog.Default()
}

// ErrDeregistered is what Run returns after the instance was deregistered
// (heartbeats answer INACTIVE) and the agent stopped its tasks.
var ErrDeregistered = errors.New("the container instance was deregistered")

// Agent is a node agent: it registers this host as a container instance,
// heartbeats, receives its task assignments, and runs them on the runtime.
type Agent struct {
	cfg Config
	log *slog.Logger
	c   *client
	rec *reconciler

	regMu sync.Mutex // one registration at a time

	mu       sync.Mutex
	id       identity
	interval time.Duration // heartbeat interval
	info     runtime.Info
	metadata *metadataServer // nil: disabled

	ready chan struct{} // closed once Run has registered and started serving
}

// New checks cfg and returns an agent that is not yet running.
func New(cfg Config) (*Agent, error) {
	switch {
	case cfg.Server == "":
		return nil, errors.New("agent: a server URL is required")
	case cfg.Cluster == "":
		return nil, errors.New("agent: a cluster is required")
	case cfg.Token == "":
		return nil, errors.New("agent: a join token is required")
	case cfg.DataDir == "":
		return nil, errors.New("agent: a data directory is required")
	case cfg.Runtime == nil:
		return nil, errors.New("agent: a container runtime is required")
	case cfg.CPU < 0 || cfg.Memory < 0 || cfg.ReservedMemory < 0:
		return nil, errors.New("agent: cpu, memory and reserved memory must not be negative")
	case cfg.TaskCleanupWait < 0:
		return nil, errors.New("agent: the task cleanup wait must not be negative")
	}
	switch cfg.PullBehavior {
	case "":
		cfg.PullBehavior = PullDefault
	case PullDefault, PullAlways, PullOnce, PullPreferCached:
	default:
		return nil, fmt.Errorf("agent: image pull behavior %q (default, always, once or prefer-cached)", cfg.PullBehavior)
	}
	cfg.AvailabilityZone = cmp.Or(cfg.AvailabilityZone, "local")
	cfg.DefaultStopTimeout = cmp.Or(cfg.DefaultStopTimeout, DefaultStopTimeout)
	cfg.TaskCleanupWait = cmp.Or(cfg.TaskCleanupWait, DefaultTaskCleanupWait)
	cfg.Attributes = maps.Clone(cfg.Attributes)
	cfg.Labels = maps.Clone(cfg.Labels)
	log := cmp.Or(cfg.Logger, slog.Default())
	return &Agent{cfg: cfg, log: log, c: newClient(cfg.Server, cfg.HTTPClient), ready: make(chan struct{})}, nil
}

// Ready is closed once Run has registered the instance and started its
// metadata endpoint and task loops: from then on ContainerInstanceARN and
// MetadataEndpoint have their final values. It stays open if Run fails
// before.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// ContainerInstanceARN is the instance the agent registered as ("" before).
func (a *Agent) ContainerInstanceARN() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id.ContainerInstanceARN
}

// Run registers and runs the agent until ctx ends, then returns nil,
// leaving the containers running (a restarted agent finds them again). It
// returns early with an error if registration is refused, and with
// ErrDeregistered once the instance was deregistered and its tasks stopped.
func (a *Agent) Run(ctx context.Context) error {
	info, err := a.waitForRuntime(ctx)
	if err != nil {
		return err
	}
	a.info = info
	if a.cfg.InstanceType == "" {
		a.cfg.InstanceType = "gantry." + info.Runtime
	}
	if err := a.register(ctx); err != nil {
		return err
	}

	env := &machineEnv{
		rt: a.cfg.Runtime,
		translate: TranslateOptions{
			Cluster:              clusterName(a.cfg.Cluster),
			ContainerInstanceARN: a.ContainerInstanceARN(),
			Labels:               a.cfg.Labels,
			DefaultStopTimeout:   a.cfg.DefaultStopTimeout,
			OS:                   info.OS,
			Arch:                 info.Arch,
			AllowPrivileged:      a.cfg.AllowPrivileged,
			LogDrivers:           info.LogDrivers,
			SecurityOptions:      info.SecurityOptions,
		},
		pull:   a.cfg.PullBehavior,
		pulled: &imageSet{},
		now:    time.Now,
		log:    a.log,
	}
	a.useBuiltinRegistry(env)
	a.rec = newReconciler(env, a.cfg.Cluster, a.c.taskState, a.log)
	if err := a.startMetadata(&env.translate); err != nil {
		return err
	}
	if a.metadata != nil {
		defer a.metadata.Close()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.rec.start(ctx)

	var wg sync.WaitGroup
	wg.Add(5)
	go func() { defer wg.Done(); a.watchEvents(ctx) }()
	go func() { defer wg.Done(); a.streamAssignments(ctx) }()
	go func() { defer wg.Done(); a.heartbeats(ctx, cancel) }()
	go func() { defer wg.Done(); a.serveLogRequests(ctx) }()
	go func() { defer wg.Done(); a.cleanupLoop(ctx) }()
	close(a.ready)
	<-ctx.Done()
	wg.Wait()
	a.rec.wait()
	if err := context.Cause(ctx); errors.Is(err, ErrDeregistered) {
		return err
	}
	return nil
}

// startMetadata starts the task metadata endpoint as configured, and tells
// the translator its URL. An endpoint that cannot listen where it was told
// to is an error; one on the default address merely logs (a remote engine,
// a host without docker0): containers then get no metadata URI.
func (a *Agent) startMetadata(opts *TranslateOptions) error {
	addr, advertise := a.cfg.MetadataAddress, ""
	switch addr {
	case "off":
		return nil
	case "":
		if a.info.HostGateway == "" {
			a.log.Info("task metadata endpoint disabled: the runtime reports no bridge gateway; set the metadata address")
			return nil
		}
		addr = net.JoinHostPort(a.info.HostGateway, strconv.Itoa(DefaultMetadataPort))
	default:
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("metadata address %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			advertise = a.info.HostGateway
		}
	}
	secret, err := loadMetadataSecret(a.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("task metadata endpoint: %w", err)
	}
	s, err := startMetadata(addr, advertise, a.rec, a.log)
	if err != nil {
		if a.cfg.MetadataAddress == "" {
			a.log.Warn("task metadata endpoint disabled: cannot listen on the bridge gateway (is the engine on another host?)", "addr", addr, "err", err)
			return nil
		}
		return fmt.Errorf("task metadata endpoint: %w", err)
	}
	a.mu.Lock()
	a.metadata = s
	a.mu.Unlock()
	opts.MetadataEndpoint, opts.MetadataSecret = s.endpoint, secret
	a.log.Info("task metadata endpoint", "url", s.endpoint+"/v4/")
	return nil
}

// MetadataEndpoint is the base URL containers reach the task metadata
// endpoint at ("" when it is off, or before Run started it).
func (a *Agent) MetadataEndpoint() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.metadata == nil {
		return ""
	}
	return a.metadata.endpoint
}

// waitForRuntime returns the runtime's Info, waiting (with backoff) while
// the engine is unreachable.
func (a *Agent) waitForRuntime(ctx context.Context) (runtime.Info, error) {
	bo := backoff{min: 500 * time.Millisecond, max: 15 * time.Second}
	for {
		info, err := a.cfg.Runtime.Info(ctx)
		if err == nil {
			if info.Hostname == "" {
				info.Hostname, _ = os.Hostname()
			}
			return info, nil
		}
		if ctx.Err() != nil {
			return runtime.Info{}, ctx.Err()
		}
		d := bo.next()
		a.log.Warn("container engine unavailable; waiting", "in", d, "err", err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return runtime.Info{}, ctx.Err()
		}
	}
}

// register registers the instance (or re-registers the one in the data
// dir), retrying while the server is unreachable. A refusal (bad token,
// unknown cluster) is returned.
func (a *Agent) register(ctx context.Context) error {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	id, err := loadIdentity(a.cfg.DataDir)
	if err != nil {
		return err
	}
	if id.ContainerInstanceARN != "" && id.Cluster != a.cfg.Cluster {
		a.log.Info("data dir holds an instance of another cluster; registering a new one",
			"was", id.ContainerInstanceARN, "cluster", id.Cluster)
		id = identity{}
	}
	req, err := registration(&a.cfg, a.info, id)
	if err != nil {
		return err
	}
	bo := backoff{min: 250 * time.Millisecond, max: 15 * time.Second}
	for {
		resp, err := a.c.register(ctx, a.cfg.Token, req)
		if err == nil {
			return a.registered(id, resp)
		}
		var ae *apiError
		if errors.As(err, &ae) && (ae.permanent() || ae.Status == http.StatusUnauthorized) {
			return fmt.Errorf("register with %s: %w", a.cfg.Server, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := bo.next()
		a.log.Warn("registration failed; retrying", "in", d, "err", err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *Agent) registered(old identity, resp protocol.RegisterResponse) error {
	arn := resp.ContainerInstance.ContainerInstanceARN
	if arn == "" || resp.InstanceToken == "" {
		return errors.New("register: the server answered without an instance ARN or token")
	}
	id := identity{ContainerInstanceARN: arn, InstanceToken: resp.InstanceToken, Cluster: a.cfg.Cluster, Server: a.cfg.Server}
	if err := id.save(a.cfg.DataDir); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	interval := time.Duration(resp.HeartbeatIntervalMillis) * time.Millisecond
	if interval <= 0 {
		interval = 5 * time.Second
	}
	a.mu.Lock()
	a.id, a.interval = id, interval
	a.mu.Unlock()
	a.c.setToken(id.InstanceToken)
	if old.ContainerInstanceARN != "" && old.ContainerInstanceARN != arn {
		a.log.Warn("registered as a new container instance; the old one's tasks are not adopted", "old", old.ContainerInstanceARN)
	}
	a.log.Info("registered", "containerInstance", arn, "cluster", a.cfg.Cluster)
	return nil
}

// heartbeats keeps agentConnected true. It re-registers when the server no
// longer knows the token, and cancels the agent once the instance is
// deregistered (after stopping its tasks).
func (a *Agent) heartbeats(ctx context.Context, cancel context.CancelCauseFunc) {
	for {
		a.mu.Lock()
		interval := a.interval
		a.mu.Unlock()
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return
		}
		resp, err := a.c.heartbeat(ctx)
		var ae *apiError
		switch {
		case err == nil && resp.Status == "INACTIVE":
			a.log.Warn("container instance deregistered; stopping its tasks")
			a.deregistered(ctx)
			cancel(ErrDeregistered)
			return
		case err == nil:
		case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
			a.log.Warn("the server no longer accepts this instance's token; registering again", "err", err)
			if err := a.register(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("registering again failed", "err", err)
			}
		case ctx.Err() == nil:
			a.log.Warn("heartbeat failed", "err", err)
		}
	}
}

// deregistered stops every task and waits (bounded) until they are stopped
// and reported.
func (a *Agent) deregistered(ctx context.Context) {
	a.rec.stopAll()
	deadline := time.Now().Add(a.cfg.DefaultStopTimeout + time.Minute)
	for a.rec.active() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
}

// streamAssignments keeps the assignments stream open, reconnecting with
// backoff, and applies every message it receives (a snapshot on each
// connection, then deltas).
func (a *Agent) streamAssignments(ctx context.Context) {
	bo := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for ctx.Err() == nil {
		got, err := a.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			bo.reset()
		}
		d := bo.next()
		a.log.Warn("assignments stream ended; reconnecting", "in", d, "err", err)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			if rerr := a.register(ctx); rerr != nil && ctx.Err() == nil {
				a.log.Error("registering again failed", "err", rerr)
			}
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
}

// streamIdle is how long a stream may stay silent: the server sends a
// keepalive at least every 15 s.
const streamIdle = 45 * time.Second

// stream reads one connection of the assignments stream until it breaks.
// got says whether any message arrived (the connection was healthy).
func (a *Agent) stream(ctx context.Context) (got bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, err := a.c.assignments(sctx)
	if err != nil {
		return false, err
	}
	defer body.Close()
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		idle.Reset(streamIdle)
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var as protocol.Assignment
		if err := json.Unmarshal(line, &as); err != nil {
			return got, fmt.Errorf("assignments: %w", err)
		}
		got = true
		if as.Keepalive {
			continue
		}
		a.rec.apply(as)
	}
	if err := sc.Err(); err != nil {
		if sctx.Err() != nil && ctx.Err() == nil {
			return got, fmt.Errorf("assignments: no message for %v", streamIdle)
		}
		return got, err
	}
	return got, io.ErrUnexpectedEOF
}

// watchEvents subscribes to the runtime's events for this instance's
// containers and wakes their tasks' runners; after a broken stream it
// subscribes again and wakes every runner, since events may have been lost.
func (a *Agent) watchEvents(ctx context.Context) {
	labels := map[string]string{LabelContainerInstance: a.ContainerInstanceARN()}
	bo := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for ctx.Err() == nil {
		events, errc := a.cfg.Runtime.Events(ctx, labels)
		a.rec.pokeAll() // subscribed first, then look: nothing falls in between
		n := 0
		for e := range events {
			n++
			a.rec.event(e)
		}
		err := <-errc
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			bo.reset()
		}
		d := bo.next()
		a.log.Warn("runtime event stream broke; subscribing again", "in", d, "err", err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
}

// clusterName is the name in a cluster reference (a name or an ARN), for
// the com.amazonaws.ecs.cluster label.
func clusterName(ref string) string {
	if a, ok := ecs.ParseARN(ref); ok && a.Kind == "cluster" {
		return a.Resource
	}
	return ref
}

// agentHash is the VCS revision the binary was built from, if recorded.
func agentHash() string {
	bi, ok := rdebug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 8 {
			return s.Value[:8]
		}
	}
	return ""
}

// useBuiltinRegistry makes ECR-style images of Gantry's account, and images
// named by the control plane's own host, come from its built-in registry,
// pulled with this instance's token as the ECS agent pulls from ECR with
// credentials it obtains itself (docs/registry.md).
func (a *Agent) useBuiltinRegistry(env *machineEnv) {
	reg, err := ecr.RegistryFor(a.cfg.Server, a.ContainerInstanceARN())
	if err != nil {
		a.log.Warn("images from the built-in registry cannot be pulled", "err", err)
		return
	}
	env.translate.ResolveImage = func(image string) string {
		ref, _ := reg.Resolve(image)
		return ref
	}
	env.registryAuth = func(image string) *runtime.RegistryAuth {
		if _, builtin := reg.Resolve(image); !builtin {
			return nil
		}
		return &runtime.RegistryAuth{Username: ecr.RegistryUsername, Password: a.c.instanceToken(), ServerAddress: reg.Host}
	}
}
