package ecs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/internal/awsproto"
	"github.com/gantry-dev/gantry/scheduler/query"
)

// ParseExpression parses the cluster query language expression of a
// memberOf constraint, found at where (the request member, e.g.
// "placementConstraints[0].expression"). A malformed one is an error with
// code, showing the expression and where in it parsing broke: ECS answers
// RegisterTaskDefinition with ClientException, RunTask and services with
// InvalidParameterException.
func ParseExpression(expr, where, code string) (*query.Expr, error) {
	e, err := query.Parse(expr)
	var se *query.SyntaxError
	if errors.As(err, &se) {
		shown := ""
		if len(expr) <= 200 {
			shown = fmt.Sprintf(" %q", expr)
		}
		return nil, awsproto.Errorf(code, "Invalid cluster query language expression in %s%s: %s.", where, shown, se)
	}
	return e, err
}

// validatePlacementConstraints: at most MaxPlacementConstraints memberOf
// constraints (the model allows no other type in a task definition), each
// with an expression that parses, so a malformed one is refused when the
// task definition is registered, not when a task of it is run.
func (c *taskCheck) validatePlacementConstraints() error {
	td := c.td
	if len(td.PlacementConstraints) > MaxPlacementConstraints {
		return ClientError("Too many placement constraints: at most %d are allowed.", MaxPlacementConstraints)
	}
	for i, pc := range td.PlacementConstraints {
		if strings.TrimSpace(pc.Expression) == "" {
			return ClientError("A memberOf placement constraint requires an expression.")
		}
		if _, err := ParseExpression(pc.Expression, fmt.Sprintf("placementConstraints[%d].expression", i), ErrCodeClientException); err != nil {
			return err
		}
	}
	return nil
}
