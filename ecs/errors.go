package ecs

import "github.com/gantry-dev/gantry/internal/awsproto"

// Constructors for the ECS errors the domain raises, so call sites read as
// ECS's documentation does. The wire mapping is awsproto.WriteError's job.

// InvalidParameter is ECS's InvalidParameterException.
func InvalidParameter(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(ErrCodeInvalidParameterException, format, args...)
}

// ClientError is ECS's ClientException: the request is understood but refused.
func ClientError(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(ErrCodeClientException, format, args...)
}

// ClusterNotFound is ECS's ClusterNotFoundException with ECS's message.
func ClusterNotFound() *awsproto.Error {
	return awsproto.Errorf(ErrCodeClusterNotFoundException, "Cluster not found.")
}

// UnsupportedFeature is ECS's UnsupportedFeatureException, which Gantry also
// uses for ECS features it does not implement yet: refused, never ignored.
func UnsupportedFeature(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(ErrCodeUnsupportedFeatureException, format, args...)
}

// Errorf is an ECS error with any code.
func Errorf(code, format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(code, format, args...)
}
