// Package sim is a simulated runtime.Runtime: containers "run" in memory, with
// no engine, so that scale tests can start thousands of tasks on one machine
// and agent tests can run where Docker is missing.
//
// It speaks testapp's language (see testapp/): a container whose command is
// "exit 3 --after 1s" exits with 3 after a second, "sleep 10" exits 0 after
// ten seconds, "alloc N" is OOM-killed when N MiB exceeds its memory limit,
// and --ignore-sigterm makes Stop wait for its timeout and kill (exit 137).
// Any other command runs until stopped; Stop ends it with exit 0, as testapp
// exits on SIGTERM. Tests can also make a container exit, change health or be
// OOM-killed at will (Exit, SetHealth, OOM).
//
// It mirrors the Docker runtime's contract (errors, events, dynamic ports,
// name conflicts), not its performance: only Options.StartDelay simulates
// engine latency.
package sim

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// Options configure a simulated runtime.
type Options struct {
	StartDelay      time.Duration // how long Start takes before the container runs
	HealthyAfter    time.Duration // when a container with a health check is first judged, after it starts
	Images          []string      // images stored locally from the start
	AllowPrivileged bool          // as docker.Policy
	Info            runtime.Info  // what Info reports; zero fields get defaults (4 CPUs, 8 GiB, linux)
	// GPUs are the host's simulated GPU IDs: a container may ask for these
	// only (a real engine fails to start one asking for another).
	GPUs []string

	// PullFn decides a Pull; nil: every pull succeeds. A nil result stores
	// the image.
	PullFn func(ctx context.Context, image string) error
}

// Runtime is the simulated runtime. The zero value is not usable; call New.
type Runtime struct {
	opts Options

	mu         sync.Mutex
	containers map[string]*simContainer // by ID
	names      map[string]string        // name -> ID
	images     map[string]bool
	digests    map[string]string // image -> registry digest, for images pulled
	volumes    map[string]runtime.VolumeSpec
	subs       map[*subscriber]bool
	ports      map[portKey]*simContainer // host ports in use
	nextPort   uint16                    // next dynamic host port to try
	seq        int
}

// Interface guard.
var _ runtime.Runtime = (*Runtime)(nil)

// New returns a simulated runtime.
func New(opts Options) *Runtime {
	r := &Runtime{
		opts:       opts,
		containers: map[string]*simContainer{},
		names:      map[string]string{},
		images:     map[string]bool{},
		digests:    map[string]string{},
		volumes:    map[string]runtime.VolumeSpec{},
		subs:       map[*subscriber]bool{},
		ports:      map[portKey]*simContainer{},
		nextPort:   32768,
	}
	for _, img := range opts.Images {
		r.images[img] = true
	}
	return r
}

func (r *Runtime) Info(ctx context.Context) (runtime.Info, error) {
	i := r.opts.Info
	i.Runtime = "sim"
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&i.EngineVersion, "sim")
	def(&i.APIVersion, "sim")
	def(&i.OS, "linux")
	def(&i.Arch, "amd64")
	def(&i.Hostname, "sim")
	if i.CPUs == 0 {
		i.CPUs = 4
	}
	if i.MemoryBytes == 0 {
		i.MemoryBytes = 8 << 30
	}
	if i.LogDrivers == nil {
		i.LogDrivers = []string{"json-file"}
	}
	return i, nil
}

func (r *Runtime) Pull(ctx context.Context, image string, auth *runtime.RegistryAuth) error {
	if r.opts.PullFn != nil {
		if err := r.opts.PullFn(ctx, image); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[image] = true
	sum := sha256.Sum256([]byte("manifest of " + image))
	r.digests[image] = "sha256:" + hex.EncodeToString(sum[:])
	return nil
}

// ImageDigest reports a digest for pulled images only: those in
// Options.Images stand for images built locally.
func (r *Runtime) ImageDigest(ctx context.Context, image string) (string, error) {
	if _, d, ok := strings.Cut(image, "@"); ok {
		return d, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.images[image] {
		return "", fmt.Errorf("inspect image %s: no such image: %w", image, runtime.ErrImageNotFound)
	}
	return r.digests[image], nil
}

func (r *Runtime) HasImage(ctx context.Context, image string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.images[image], nil
}

func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	if spec.Privileged && !r.opts.AllowPrivileged {
		return "", runtime.Unsupported("Privileged", "this host does not allow privileged containers")
	}
	for _, g := range spec.GPUs {
		if !slices.Contains(r.opts.GPUs, g) {
			return "", runtime.Unsupported("GPUs", "this host has no GPU %q", g)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.images[spec.Image] {
		return "", fmt.Errorf("create %s: no such image: %s: %w", spec.Name, spec.Image, runtime.ErrImageNotFound)
	}
	if spec.Name == "" {
		r.seq++
		spec.Name = fmt.Sprintf("sim_%d", r.seq)
	}
	if id, ok := r.names[spec.Name]; ok {
		return "", fmt.Errorf("create %s: the name is already in use by container %s: %w", spec.Name, id, runtime.ErrConflict)
	}
	for _, ref := range refs(spec) {
		if r.lookup(ref) == nil {
			return "", fmt.Errorf("create %s: no such container: %s: %w", spec.Name, ref, runtime.ErrNotFound)
		}
	}
	for _, m := range spec.Mounts {
		if m.Type == runtime.MountVolume && m.Source != "" {
			if _, ok := r.volumes[m.Source]; !ok {
				r.volumes[m.Source] = runtime.VolumeSpec{Name: m.Source, Driver: "local"} // as the engine does
			}
		}
	}
	c := &simContainer{
		id:      randomID(),
		spec:    spec,
		prog:    parse(spec),
		state:   runtime.StateCreated,
		created: time.Now(),
		changed: make(chan struct{}),
	}
	r.containers[c.id] = c
	r.names[spec.Name] = c.id
	return c.id, nil
}

func (r *Runtime) Start(ctx context.Context, id string) error {
	r.mu.Lock()
	c := r.lookup(id)
	switch {
	case c == nil:
		r.mu.Unlock()
		return notFound("start", id)
	case c.state == runtime.StateRunning:
		r.mu.Unlock()
		return nil
	}
	if err := r.bindPorts(c); err != nil {
		c.err = err.Error()
		r.mu.Unlock()
		return fmt.Errorf("start %s: %w", short(id), err)
	}
	c.starting = true
	r.mu.Unlock()

	if d := r.opts.StartDelay; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			r.mu.Lock()
			c.starting = false
			r.release(c)
			r.mu.Unlock()
			return ctx.Err()
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.containers[c.id] != c { // removed meanwhile
		return notFound("start", id)
	}
	c.starting = false
	c.gen++
	c.state, c.started, c.finished, c.exitCode, c.oom, c.err = runtime.StateRunning, time.Now(), time.Time{}, 0, false, ""
	c.health = runtime.HealthNone
	if hc := c.spec.HealthCheck; hc != nil && hc.Test[0] != "NONE" {
		c.health = runtime.HealthStarting
	}
	r.emit(c, runtime.Event{Type: runtime.EventStart})
	r.run(c)
	return nil
}

func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	r.mu.Lock()
	c := r.lookup(id)
	if c == nil {
		r.mu.Unlock()
		return notFound("stop", id)
	}
	if c.state != runtime.StateRunning {
		r.mu.Unlock()
		return nil
	}
	gen := c.gen
	if !c.prog.ignoreTerm {
		c.log("received terminated, exiting")
		r.exit(c, 0, false)
		r.mu.Unlock()
		return nil
	}
	c.log("ignoring terminated")
	r.mu.Unlock()

	// SIGTERM ignored: kill after the timeout, as the engine does.
	t := time.NewTimer(time.Duration(seconds(timeout)) * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.state == runtime.StateRunning && c.gen == gen {
		r.exit(c, 137, false)
	}
	return nil
}

func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.lookup(id)
	if c == nil {
		return notFound("remove", id)
	}
	if c.state == runtime.StateRunning {
		r.exit(c, 137, false)
	}
	delete(r.containers, c.id)
	delete(r.names, c.spec.Name)
	c.gen++                       // cancels pending behaviour
	c.state = runtime.StateExited // ends followers of a never-started container's logs
	c.notify()
	r.emit(c, runtime.Event{Type: runtime.EventDestroy})
	return nil
}

func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.lookup(id)
	if c == nil {
		return runtime.ContainerStatus{}, notFound("inspect", id)
	}
	return c.status(), nil
}

func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]runtime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.ContainerStatus
	for _, c := range r.containers {
		if matches(c.spec.Labels, labels) {
			out = append(out, c.status())
		}
	}
	slices.SortFunc(out, func(a, b runtime.ContainerStatus) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (r *Runtime) CreateVolume(ctx context.Context, v runtime.VolumeSpec) error {
	if err := v.Validate(); err != nil {
		return err
	}
	if v.Driver == "" {
		v.Driver = "local"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.volumes[v.Name]; ok {
		if old.Driver != v.Driver {
			return fmt.Errorf("create volume %s: exists with driver %s: %w", v.Name, old.Driver, runtime.ErrConflict)
		}
		return nil
	}
	v.Options, v.Labels = maps.Clone(v.Options), maps.Clone(v.Labels)
	r.volumes[v.Name] = v
	return nil
}

func (r *Runtime) InspectVolume(ctx context.Context, name string) (runtime.VolumeSpec, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.volumes[name]
	if !ok {
		return v, fmt.Errorf("inspect volume %s: no such volume: %w", name, runtime.ErrNotFound)
	}
	return v, nil
}

func (r *Runtime) ListVolumes(ctx context.Context, labels map[string]string) ([]runtime.VolumeSpec, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.VolumeSpec
	for _, name := range slices.Sorted(maps.Keys(r.volumes)) {
		if v := r.volumes[name]; matches(v.Labels, labels) {
			v.Options, v.Labels = maps.Clone(v.Options), maps.Clone(v.Labels)
			out = append(out, v)
		}
	}
	return out, nil
}

func (r *Runtime) RemoveVolume(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.volumes[name]; !ok {
		return fmt.Errorf("remove volume %s: no such volume: %w", name, runtime.ErrNotFound)
	}
	for _, c := range r.containers {
		for _, m := range c.spec.Mounts {
			if m.Type == runtime.MountVolume && m.Source == name {
				return fmt.Errorf("remove volume %s: volume is in use by %s: %w", name, short(c.id), runtime.ErrConflict)
			}
		}
	}
	delete(r.volumes, name)
	return nil
}

// Exit makes a running container's process exit by itself with code.
// Errors: runtime.ErrNotFound, and an error if it is not running.
func (r *Runtime) Exit(id string, code int) error {
	return r.running(id, func(c *simContainer) {
		c.log(fmt.Sprintf("exiting with code %d", code))
		r.exit(c, code, false)
	})
}

// OOM makes the kernel's OOM killer end a running container (exit 137).
func (r *Runtime) OOM(id string) error {
	return r.running(id, func(c *simContainer) { r.exit(c, 137, true) })
}

// SetHealth sets a running container's health, as its health check would.
func (r *Runtime) SetHealth(id string, h runtime.HealthStatus) error {
	return r.running(id, func(c *simContainer) { r.setHealth(c, h) })
}

func (r *Runtime) running(id string, f func(*simContainer)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.lookup(id)
	if c == nil {
		return notFound("sim", id)
	}
	if c.state != runtime.StateRunning {
		return fmt.Errorf("container %s is %s, not running", short(c.id), c.state)
	}
	f(c)
	return nil
}

// lookup finds a container by ID, unique ID prefix or name. r.mu is held.
func (r *Runtime) lookup(ref string) *simContainer {
	if c, ok := r.containers[ref]; ok {
		return c
	}
	if id, ok := r.names[ref]; ok {
		return r.containers[id]
	}
	return nil
}

type portKey struct {
	port  uint16
	proto runtime.Protocol
}

// bindPorts assigns host ports at start, as the engine does, refusing a
// static port another container holds. r.mu is held.
func (r *Runtime) bindPorts(c *simContainer) error {
	r.release(c)
	for _, p := range c.spec.Ports {
		b := runtime.PortBinding{ContainerPort: p.ContainerPort, HostPort: p.HostPort, Protocol: cmp.Or(p.Protocol, runtime.TCP), HostIP: cmp.Or(p.HostIP, "0.0.0.0")}
		if c.spec.NetworkMode == runtime.NetworkHost {
			b.HostPort = p.ContainerPort
		}
		for tries := 0; b.HostPort == 0 && tries < 65536; tries++ {
			if r.ports[portKey{r.nextPort, b.Protocol}] == nil {
				b.HostPort = r.nextPort
			}
			if r.nextPort++; r.nextPort == 61000 {
				r.nextPort = 32768
			}
		}
		k := portKey{b.HostPort, b.Protocol}
		if b.HostPort == 0 || r.ports[k] != nil {
			r.release(c)
			return fmt.Errorf("bind for %s:%d failed: port is already allocated", b.HostIP, b.HostPort)
		}
		r.ports[k] = c
		c.ports = append(c.ports, b)
	}
	return nil
}

// release frees c's host ports. r.mu is held.
func (r *Runtime) release(c *simContainer) {
	for _, b := range c.ports {
		if k := (portKey{b.HostPort, b.Protocol}); r.ports[k] == c {
			delete(r.ports, k)
		}
	}
	c.ports = nil
}

func refs(s runtime.ContainerSpec) []string {
	var out []string
	for _, l := range s.Links {
		out = append(out, l.Container)
	}
	for _, v := range s.VolumesFrom {
		out = append(out, v.Container)
	}
	return out
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func notFound(op, id string) error {
	return fmt.Errorf("%s: no such container: %s: %w", op, id, runtime.ErrNotFound)
}

func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// seconds rounds d up to whole seconds, as the Docker runtime does.
func seconds(d time.Duration) int {
	return int((max(d, 0) + time.Second - 1) / time.Second)
}
