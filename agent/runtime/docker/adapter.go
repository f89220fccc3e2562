package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// Options configure a Runtime.
type Options struct {
	// Client is the engine client; nil: one configured from the environment
	// (DOCKER_HOST, DOCKER_API_VERSION, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY)
	// that negotiates the API version with the engine.
	Client *client.Client
	Policy Policy
	Logger *slog.Logger // engine warnings; nil: slog.Default()
}

// Runtime drives a Docker Engine. Its methods are the engine calls and
// nothing else: specs are translated by Translate, answers by status.go.
type Runtime struct {
	c      *client.Client
	policy Policy
	log    *slog.Logger
}

// Interface guard.
var _ runtime.Runtime = (*Runtime)(nil)

// New returns a Runtime. It does not contact the engine; Info does.
func New(opts Options) (*Runtime, error) {
	c := opts.Client
	if c == nil {
		var err error
		c, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("docker client: %w", err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Runtime{c: c, policy: opts.Policy, log: log}, nil
}

// Close releases the client's connections, also those of a Client passed in
// Options.
func (r *Runtime) Close() error { return r.c.Close() }

func (r *Runtime) Info(ctx context.Context) (runtime.Info, error) {
	i, err := r.c.Info(ctx)
	if err != nil {
		return runtime.Info{}, wrap("info", err, runtime.ErrNotFound)
	}
	out := info(i, r.c.ClientVersion())
	if n, err := r.c.NetworkInspect(ctx, "bridge", network.InspectOptions{}); err == nil {
		out.HostGateway = bridgeGateway(n)
	}
	return out, nil
}

func (r *Runtime) Pull(ctx context.Context, ref string, auth *runtime.RegistryAuth) error {
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return runtime.Invalid("Image", "%q: %v", ref, err)
	}
	var opts image.PullOptions
	if auth != nil {
		enc, err := registry.EncodeAuthConfig(registry.AuthConfig{
			Username: auth.Username, Password: auth.Password,
			ServerAddress: auth.ServerAddress, IdentityToken: auth.IdentityToken,
		})
		if err != nil {
			return err
		}
		opts.RegistryAuth = enc
	}
	rc, err := r.c.ImagePull(ctx, ref, opts)
	if err != nil {
		// The engine answers with a status code when it fails before
		// streaming (no such image, bad credentials, bad reference).
		return wrap("pull "+ref, err, runtime.ErrImageNotFound)
	}
	defer rc.Close()
	// Later failures arrive inside the progress stream, unclassified.
	if err := readStream(rc); err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}

func (r *Runtime) HasImage(ctx context.Context, ref string) (bool, error) {
	_, err := r.c.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if err = wrap("inspect image "+ref, err, runtime.ErrImageNotFound); errors.Is(err, runtime.ErrImageNotFound) {
		return false, nil
	}
	return false, err
}

func (r *Runtime) ImageDigest(ctx context.Context, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", runtime.Invalid("Image", "%q: %v", ref, err)
	}
	if c, ok := named.(reference.Canonical); ok {
		return c.Digest().String(), nil
	}
	img, err := r.c.ImageInspect(ctx, ref)
	if err != nil {
		return "", wrap("inspect image "+ref, err, runtime.ErrImageNotFound)
	}
	return repoDigest(named, img.RepoDigests), nil
}

func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	cfg, err := Translate(spec, r.policy)
	if err != nil {
		return "", err
	}
	resp, err := r.c.ContainerCreate(ctx, cfg.Config, cfg.Host, cfg.Network, nil, cfg.Name)
	if err != nil {
		// A 404 is the image, or a container named by Links or VolumesFrom.
		notFound := runtime.ErrNotFound
		if ok, herr := r.HasImage(ctx, spec.Image); herr == nil && !ok {
			notFound = runtime.ErrImageNotFound
		}
		return "", wrap("create "+cfg.Name, err, notFound)
	}
	for _, w := range resp.Warnings {
		if spec.NetworkMode == runtime.NetworkHost && strings.HasPrefix(w, hostPortsWarning) {
			continue // translate records host-mode ports on purpose (see ports)
		}
		r.log.Warn("docker: engine warning on create", "container", cfg.Name, "id", short(resp.ID), "warning", w)
	}
	return resp.ID, nil
}

// hostPortsWarning is the engine's warning about PortBindings in host mode.
const hostPortsWarning = "Published ports are discarded"

func (r *Runtime) Start(ctx context.Context, id string) error {
	return wrap("start "+short(id), r.c.ContainerStart(ctx, id, container.StartOptions{}), runtime.ErrNotFound)
}

func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := seconds(max(timeout, 0))
	return wrap("stop "+short(id), r.c.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}), runtime.ErrNotFound)
}

func (r *Runtime) Remove(ctx context.Context, id string) error {
	err := r.c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	return wrap("remove "+short(id), err, runtime.ErrNotFound)
}

func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	c, err := r.c.ContainerInspect(ctx, id)
	if err != nil {
		return runtime.ContainerStatus{}, wrap("inspect "+short(id), err, runtime.ErrNotFound)
	}
	return status(c), nil
}

func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]runtime.ContainerStatus, error) {
	list, err := r.c.ContainerList(ctx, container.ListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return nil, wrap("list", err, runtime.ErrNotFound)
	}
	out := make([]runtime.ContainerStatus, 0, len(list))
	for _, c := range list {
		s, err := r.Inspect(ctx, c.ID)
		if errors.Is(err, runtime.ErrNotFound) {
			continue // removed since listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *Runtime) Events(ctx context.Context, labels map[string]string) (<-chan runtime.Event, <-chan error) {
	f := labelFilters(labels)
	f.Add("type", string(events.ContainerEventType))
	for _, a := range eventActions {
		f.Add("event", string(a))
	}
	// The client reads its API version on the stream's goroutine without a
	// lock; have it negotiated (once per client) before it starts, so no
	// concurrent call writes it meanwhile.
	r.c.NegotiateAPIVersion(ctx)
	msgs, errs := r.c.Events(ctx, events.ListOptions{Filters: f})
	out, errc := make(chan runtime.Event), make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-msgs:
				e, ok := event(m)
				if !ok {
					continue
				}
				select {
				case out <- e:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			case err := <-errs:
				if ctx.Err() != nil {
					err = ctx.Err()
				} else if err == nil || errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF // the engine ended the stream
				}
				errc <- wrap("events", err, runtime.ErrNotFound)
				return
			}
		}
	}()
	return out, errc
}

func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions) (io.ReadCloser, error) {
	o := container.LogsOptions{
		ShowStdout: opts.Stdout || !opts.Stderr,
		ShowStderr: opts.Stderr || !opts.Stdout,
		Follow:     opts.Follow,
		Timestamps: opts.Timestamps,
	}
	if opts.Tail > 0 {
		o.Tail = fmt.Sprint(opts.Tail)
	}
	if !opts.Since.IsZero() {
		o.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	body, err := r.c.ContainerLogs(ctx, id, o)
	if err != nil {
		return nil, wrap("logs "+short(id), err, runtime.ErrNotFound)
	}
	// Without a TTY the engine multiplexes stdout and stderr in frames;
	// demultiplex both into one pipe, keeping their order.
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, body)
		pw.CloseWithError(err)
	}()
	return &logReader{PipeReader: pr, body: body}, nil
}

// Stats asks the engine for one document without one-shot, so that the
// engine waits for a second sample and fills precpu_stats (CPU usage is the
// difference), as the ECS agent's streamed stats have it.
func (r *Runtime) Stats(ctx context.Context, id string) (json.RawMessage, error) {
	resp, err := r.c.ContainerStats(ctx, id, false)
	if err != nil {
		return nil, wrap("stats "+short(id), err, runtime.ErrNotFound)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxStatsBytes))
	if err != nil {
		return nil, wrap("stats "+short(id), err, runtime.ErrNotFound)
	}
	if !json.Valid(b) || !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		return nil, fmt.Errorf("stats %s: the engine answered no JSON object", short(id))
	}
	return bytes.TrimSpace(b), nil
}

// maxStatsBytes bounds a stats document (a few KiB; percpu_usage grows with
// the host's CPUs).
const maxStatsBytes = 1 << 20

type logReader struct {
	*io.PipeReader
	body io.ReadCloser
}

func (l *logReader) Close() error {
	l.PipeReader.Close()
	return l.body.Close()
}

func (r *Runtime) CreateVolume(ctx context.Context, v runtime.VolumeSpec) error {
	if err := v.Validate(); err != nil {
		return err
	}
	_, err := r.c.VolumeCreate(ctx, volume.CreateOptions{Name: v.Name, Driver: v.Driver, DriverOpts: v.Options, Labels: v.Labels})
	return wrap("create volume "+v.Name, err, runtime.ErrNotFound)
}

func (r *Runtime) InspectVolume(ctx context.Context, name string) (runtime.VolumeSpec, error) {
	v, err := r.c.VolumeInspect(ctx, name)
	if err != nil {
		return runtime.VolumeSpec{}, wrap("inspect volume "+name, err, runtime.ErrNotFound)
	}
	return runtime.VolumeSpec{Name: v.Name, Driver: v.Driver, Options: v.Options, Labels: v.Labels}, nil
}

func (r *Runtime) ListVolumes(ctx context.Context, labels map[string]string) ([]runtime.VolumeSpec, error) {
	resp, err := r.c.VolumeList(ctx, volume.ListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return nil, wrap("list volumes", err, runtime.ErrNotFound)
	}
	out := make([]runtime.VolumeSpec, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		if v != nil {
			out = append(out, runtime.VolumeSpec{Name: v.Name, Driver: v.Driver, Options: v.Options, Labels: v.Labels})
		}
	}
	return out, nil
}

func (r *Runtime) RemoveVolume(ctx context.Context, name string) error {
	return wrap("remove volume "+name, r.c.VolumeRemove(ctx, name, false), runtime.ErrNotFound)
}

func labelFilters(labels map[string]string) filters.Args {
	f := filters.NewArgs()
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

// readStream drains an engine progress stream and returns the error it
// reports, if any.
func readStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}
