package awsproto

import "fmt"

// Error is an error with an AWS error code. It travels unchanged from where it
// is raised (validation, the store, auth) to WriteError, the one place that
// turns errors into wire responses.
type Error struct {
	Code    string // the AWS error code, e.g. "ClusterNotFoundException"
	Message string
	// Status is the HTTP status; zero means 400 (500 for ServerException).
	Status int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// HTTPStatus is the status code this error is sent with.
func (e *Error) HTTPStatus() int {
	switch {
	case e.Status != 0:
		return e.Status
	case e.Code == "ServerException" || e.Code == "InternalFailure":
		return 500
	default:
		return 400
	}
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
