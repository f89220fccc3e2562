package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Runtime runs containers on one host. Implementations are safe for
// concurrent use.
//
// Every error a method returns can be classified with errors.Is against the
// sentinel errors below; anything unclassified is an engine failure the caller
// may retry. Error messages are the engine's own words, suitable for an ECS
// container's reason (e.g. "CannotPullContainerError: " + err.Error()).
type Runtime interface {
	// Info reports the host's capacity and the engine's identity.
	// Errors: ErrUnavailable.
	Info(ctx context.Context) (Info, error)

	// Pull fetches image from its registry with auth (nil for anonymous
	// access) and returns when it is stored locally. It does not fall back to
	// a cached copy; the caller decides that with HasImage.
	// Errors: ErrImageNotFound (the registry has no such image), ErrInvalidSpec
	// (a malformed reference), ErrUnavailable (the engine, not the registry,
	// is unreachable); any other error is the registry's or the network's.
	Pull(ctx context.Context, image string, auth *RegistryAuth) error

	// HasImage reports whether image is stored locally.
	// Errors: ErrUnavailable.
	HasImage(ctx context.Context, image string) (bool, error)

	// ImageDigest reports the registry digest ("sha256:...", the manifest's)
	// of the locally stored image for image's repository, as pulled from or
	// pushed to that repository: what ECS reports as a container's
	// imageDigest. It is empty, without an error, for an image the engine has
	// no digest of for that repository (built locally, never pushed or
	// pulled). A reference by digest reports that digest.
	// Errors: ErrImageNotFound (not stored locally), ErrInvalidSpec (a
	// malformed reference), ErrUnavailable.
	ImageDigest(ctx context.Context, image string) (string, error)

	// Create creates a container from spec without starting it and returns
	// its ID. A name already in use fails, so a deterministic name guarantees
	// that a retried or repeated Create never makes a second container.
	// Errors: ErrInvalidSpec, ErrUnsupported (the spec asks for something this
	// runtime cannot or may not do), ErrImageNotFound (not stored locally),
	// ErrConflict (the name is in use), ErrUnavailable.
	Create(ctx context.Context, spec ContainerSpec) (id string, err error)

	// Start starts a created container and returns once its process runs.
	// Starting a running container is not an error. An error is the reason
	// the container could not start (a missing executable, a host port in
	// use) and leaves it created, not running.
	// Errors: ErrNotFound, ErrUnavailable.
	Start(ctx context.Context, id string) error

	// Stop signals the container to stop (SIGTERM, or the image's stop
	// signal) and kills it (SIGKILL) if it still runs after timeout, rounded
	// up to whole seconds; a timeout of 0 kills at once. It returns when the
	// container has exited; ctx should allow for timeout plus a few seconds.
	// Stopping a container that is not running is not an error.
	// Errors: ErrNotFound, ErrUnavailable.
	Stop(ctx context.Context, id string, timeout time.Duration) error

	// Remove deletes the container, killing it first if it runs, along with
	// its anonymous volumes (named volumes stay; see RemoveVolume).
	// Errors: ErrNotFound, ErrUnavailable.
	Remove(ctx context.Context, id string) error

	// Inspect reports the container's current status. id may also be the
	// container's name.
	// Errors: ErrNotFound, ErrUnavailable.
	Inspect(ctx context.Context, id string) (ContainerStatus, error)

	// List reports every container, in any state, carrying all of the given
	// labels (all containers for none). It is how a restarted agent finds the
	// containers it created before.
	// Errors: ErrUnavailable.
	List(ctx context.Context, labels map[string]string) ([]ContainerStatus, error)

	// Events streams the lifecycle events of containers carrying all of the
	// given labels, from the moment of the call until ctx ends or the stream
	// breaks. The event channel is then closed, after exactly one error (ctx's
	// error, or why the stream broke) has been sent on the buffered error
	// channel. Events can be lost when a stream breaks, so a caller subscribes
	// first, then Lists, and on a broken stream subscribes and Lists again.
	Events(ctx context.Context, labels map[string]string) (<-chan Event, <-chan error)

	// Logs returns the container's output, stdout and stderr interleaved in
	// the order written. With opts.Follow the reader blocks for new output
	// until the container exits, ctx ends or the reader is closed.
	// Errors: ErrNotFound, ErrUnsupported (the log driver cannot be read
	// back), ErrUnavailable.
	Logs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error)

	// Stats reports the container's resource usage as a JSON object in the
	// Docker Engine API's stats format (GET /containers/{id}/stats?stream=false:
	// read, preread, cpu_stats, precpu_stats, memory_stats, blkio_stats,
	// pids_stats, name, id, and networks for a container with a network of
	// its own), which the task metadata endpoint serves as is, as the ECS
	// agent does. precpu_stats is the sample before read, so the call can
	// take a second or two. A container that does not run reports zero
	// times and counters.
	// Errors: ErrNotFound, ErrUnavailable.
	Stats(ctx context.Context, id string) (json.RawMessage, error)

	// CreateVolume creates a named volume; creating one that already exists
	// with the same driver is not an error.
	// Errors: ErrInvalidSpec, ErrConflict (it exists with another driver),
	// ErrUnavailable.
	CreateVolume(ctx context.Context, v VolumeSpec) error

	// InspectVolume reports a named volume.
	// Errors: ErrNotFound, ErrUnavailable.
	InspectVolume(ctx context.Context, name string) (VolumeSpec, error)

	// ListVolumes reports every named volume carrying all of the given
	// labels.
	// Errors: ErrUnavailable.
	ListVolumes(ctx context.Context, labels map[string]string) ([]VolumeSpec, error)

	// RemoveVolume deletes a named volume and its data.
	// Errors: ErrNotFound, ErrConflict (a container uses it), ErrUnavailable.
	RemoveVolume(ctx context.Context, name string) error
}

// Sentinel errors, matched with errors.Is. Returned errors wrap them and carry
// the engine's message.
var (
	// ErrNotFound: no container (or volume) has this ID or name.
	ErrNotFound = errors.New("not found")
	// ErrImageNotFound: the image is neither stored locally (Create) nor in
	// its registry (Pull).
	ErrImageNotFound = errors.New("image not found")
	// ErrConflict: the name is taken, or the object is in use.
	ErrConflict = errors.New("conflict")
	// ErrInvalidSpec: the spec is malformed; SpecError names the field.
	ErrInvalidSpec = errors.New("invalid container spec")
	// ErrUnsupported: the spec is well formed but this runtime cannot or
	// may not honour it; SpecError names the field.
	ErrUnsupported = errors.New("unsupported")
	// ErrUnavailable: the engine cannot be reached.
	ErrUnavailable = errors.New("container engine unavailable")
)

// SpecError says which field of a ContainerSpec (or VolumeSpec) is invalid or
// unsupported, and why. It matches ErrInvalidSpec or ErrUnsupported.
type SpecError struct {
	Field  string // Go path of the field, e.g. "Ports[1].HostPort"
	Reason string // lowercase, e.g. "must equal ContainerPort in host network mode"
	Kind   error  // ErrInvalidSpec or ErrUnsupported
}

func (e *SpecError) Error() string {
	if e.Kind == ErrUnsupported {
		return e.Field + ": unsupported: " + e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap lets errors.Is match e's kind.
func (e *SpecError) Unwrap() error { return e.Kind }

// Invalid returns a SpecError of kind ErrInvalidSpec.
func Invalid(field, format string, args ...any) *SpecError {
	return &SpecError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrInvalidSpec}
}

// Unsupported returns a SpecError of kind ErrUnsupported.
func Unsupported(field, format string, args ...any) *SpecError {
	return &SpecError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrUnsupported}
}
