// Package awsproto holds what every AWS JSON 1.1 service Gantry speaks (ECS,
// ECR, later Logs and Auto Scaling) shares: the typed *Error that carries an
// AWS error code from where it is raised to WriteError, the one table that
// puts errors on the wire; request body limits and decoding; timestamps in
// AWS's epoch-seconds form; and the ValidationError the generated Validate
// methods return. It knows no service's operations.
package awsproto
