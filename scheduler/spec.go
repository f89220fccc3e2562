package scheduler

import (
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/scheduler/query"
)

// Limits on placement specifications, as ECS documents them.
const (
	// MaxStrategies: "You can specify a maximum of 5 strategy rules for
	// each task."
	MaxStrategies = 5
	// MaxConstraints: "You can specify a maximum of 10 constraints for each
	// task. This limit includes constraints in the task definition and
	// those specified at runtime."
	MaxConstraints = 10
)

// DefaultStrategies is ECS's default for service tasks, which Gantry also
// uses when a RunTask names no strategy: spread across Availability Zones,
// then across the instances within each ("AZ balanced spread").
var DefaultStrategies = []Strategy{
	Spread{Field: "attribute:" + ecs.AttributeAvailabilityZone},
	Spread{Field: FieldInstanceID},
}

// ParseStrategies checks a RunTask's or a service's placementStrategy and
// returns its strategies (nil for none: the caller picks its default).
// Errors are ECS's InvalidParameterException.
func ParseStrategies(in []ecs.PlacementStrategy) ([]Strategy, error) {
	if len(in) > MaxStrategies {
		return nil, ecs.InvalidParameter("You can specify a maximum of %d placement strategies for each task; %d were given.", MaxStrategies, len(in))
	}
	var out []Strategy
	for i, s := range in {
		switch s.Type {
		case ecs.PlacementStrategyTypeBinpack:
			switch f := strings.ToLower(s.Field); f {
			case FieldCPU, FieldMemory:
				out = append(out, Binpack{Field: f})
			default:
				return nil, ecs.InvalidParameter("placementStrategy[%d]: the binpack field must be cpu or memory, not %q.", i, s.Field)
			}
		case ecs.PlacementStrategyTypeSpread:
			switch f := s.Field; {
			case strings.EqualFold(f, FieldInstanceID), strings.EqualFold(f, "host"):
				out = append(out, Spread{Field: FieldInstanceID})
			case strings.HasPrefix(f, "attribute:") && ecs.ValidateAttribute(ecs.Attribute{Name: f[len("attribute:"):]}) == nil:
				out = append(out, Spread{Field: f})
			default:
				return nil, ecs.InvalidParameter("placementStrategy[%d]: the spread field must be instanceId, host or attribute:<name>, not %q.", i, s.Field)
			}
		case ecs.PlacementStrategyTypeRandom:
			out = append(out, Random{})
		case "":
			return nil, ecs.InvalidParameter("placementStrategy[%d].type is required: binpack, random or spread.", i)
		default:
			return nil, ecs.InvalidParameter("placementStrategy[%d].type %q is not binpack, random or spread.", i, s.Type)
		}
	}
	return out, nil
}

// ParseConstraints checks the placement constraints of a task definition
// (td, memberOf only) and of a RunTask call or service (call), at most
// MaxConstraints in all, and returns them as Filters: the task
// definition's first. Errors are ECS's InvalidParameterException; a
// malformed expression's message says where it broke.
func ParseConstraints(td []ecs.TaskDefinitionPlacementConstraint, call []ecs.PlacementConstraint) ([]Filter, error) {
	if n := len(td) + len(call); n > MaxConstraints {
		return nil, ecs.InvalidParameter("You can specify a maximum of %d placement constraints for each task, including those in the task definition; %d were given.", MaxConstraints, n)
	}
	var out []Filter
	for i, c := range td {
		f, err := parseConstraint(ecs.PlacementConstraintType(c.Type), c.Expression, fmt.Sprintf("the task definition's placementConstraints[%d]", i))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	for i, c := range call {
		f, err := parseConstraint(c.Type, c.Expression, fmt.Sprintf("placementConstraints[%d]", i))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func parseConstraint(typ ecs.PlacementConstraintType, expr, where string) (Filter, error) {
	switch typ {
	case ecs.PlacementConstraintTypeDistinctInstance:
		if expr != "" {
			return nil, ecs.InvalidParameter("%s: you cannot specify an expression if the constraint type is distinctInstance.", where)
		}
		return DistinctInstance{}, nil
	case ecs.PlacementConstraintTypeMemberOf:
		if strings.TrimSpace(expr) == "" {
			return nil, ecs.InvalidParameter("%s: a memberOf placement constraint requires an expression.", where)
		}
		e, err := ParseExpression(expr, where+".expression")
		if err != nil {
			return nil, err
		}
		return MemberOf{Expr: e}, nil
	case "":
		return nil, ecs.InvalidParameter("%s.type is required: distinctInstance or memberOf.", where)
	}
	return nil, ecs.InvalidParameter("%s.type %q is not distinctInstance or memberOf.", where, typ)
}

// ParseExpression parses a cluster query language expression; a syntax
// error is an InvalidParameterException naming where (the request member)
// and, in the expression, where it broke.
func ParseExpression(expr, where string) (*query.Expr, error) {
	return ecs.ParseExpression(expr, where, ecs.ErrCodeInvalidParameterException)
}
