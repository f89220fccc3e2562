package docker

import (
	"context"
	"errors"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// engineError is an Engine API error classified as one of runtime's sentinel
// errors, keeping the engine's message (and its typed error via Unwrap).
type engineError struct {
	op   string // e.g. "start 3f2a1b"
	kind error  // a runtime sentinel, or nil when unclassified
	err  error
}

func (e *engineError) Error() string {
	return e.op + ": " + strings.TrimPrefix(e.err.Error(), "Error response from daemon: ")
}

func (e *engineError) Unwrap() error { return e.err }

func (e *engineError) Is(target error) bool { return e.kind != nil && target == e.kind }

// wrap classifies err from operation op by the engine's HTTP status (never
// by its text). notFound is what a 404 means for this operation.
func wrap(op string, err error, notFound error) error {
	if err == nil {
		return nil
	}
	var kind error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case client.IsErrConnectionFailed(err):
		kind = runtime.ErrUnavailable
	case cerrdefs.IsNotFound(err):
		kind = notFound
	case cerrdefs.IsConflict(err):
		kind = runtime.ErrConflict
	case cerrdefs.IsInvalidArgument(err):
		kind = runtime.ErrInvalidSpec
	case cerrdefs.IsNotImplemented(err):
		kind = runtime.ErrUnsupported
	}
	return &engineError{op: op, kind: kind, err: err}
}

// short abbreviates a container ID for messages, as the Docker CLI does.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
