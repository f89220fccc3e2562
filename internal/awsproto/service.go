package awsproto

import (
	"context"
	"net/http"
	"strings"
)

// Handler decodes a request body and runs one operation.
type Handler func(ctx context.Context, body []byte) (any, error)

// validator is implemented by the generated input types: required members
// present and enum values known.
type validator interface{ Validate(path string) error }

// Op adapts a typed operation to a Handler: decode, validate the model's
// rules, run.
func Op[In, Out any](fn func(context.Context, *In) (*Out, error)) Handler {
	return func(ctx context.Context, body []byte) (any, error) {
		in := new(In)
		if err := Decode(body, in); err != nil {
			return nil, err
		}
		if v, ok := any(in).(validator); ok {
			if err := v.Validate(""); err != nil {
				return nil, err
			}
		}
		return fn(ctx, in)
	}
}

// Verifier authenticates a request (internal/sigv4.Verifier).
type Verifier interface {
	Verify(r *http.Request, body []byte, service string) (accessKeyID string, err error)
}

// Service is the front door of one AWS JSON 1.1 service: "POST /",
// dispatched on X-Amz-Target.
type Service struct {
	Name         string // for messages: "ECS"
	TargetPrefix string // e.g. "AmazonEC2ContainerServiceV20141113"
	SigningName  string // SigV4 service name, e.g. "ecs"
	Verifier     Verifier
	Ops          map[string]Handler
	// Known reports whether the model has an operation: one known but not
	// in Ops is an UnsupportedFeatureException, not an unknown operation.
	Known func(name string) bool
}

// ServeHTTP answers one API call: size limit, SigV4, dispatch, one error path.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", NewRequestID())
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		WriteError(w, &Error{Code: "UnknownOperationException", Message: s.Name + " API calls are POST / with an X-Amz-Target header", Status: http.StatusNotFound})
		return
	}
	body, err := ReadBody(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	// Authenticate before looking at the operation, as AWS does, so an
	// unauthenticated caller learns nothing about what the server offers.
	if _, err := s.Verifier.Verify(r, body, s.SigningName); err != nil {
		WriteError(w, err)
		return
	}
	prefix, name, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	h, ok := s.Ops[name]
	if prefix != s.TargetPrefix || !ok {
		WriteError(w, s.unknownOperation(prefix, name))
		return
	}
	out, err := h(r.Context(), body)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, out)
}

func (s *Service) unknownOperation(prefix, name string) *Error {
	if prefix == s.TargetPrefix && s.Known != nil && s.Known(name) {
		return Errorf("UnsupportedFeatureException", "Gantry does not implement %s yet", name)
	}
	return Errorf("UnknownOperationException", "unknown operation %q", prefix+"."+name)
}
