package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
)

func TestParseStrategies(t *testing.T) {
	ps := func(typ ecs.PlacementStrategyType, field string) ecs.PlacementStrategy {
		return ecs.PlacementStrategy{Type: typ, Field: field}
	}
	for _, tc := range []struct {
		name string
		in   []ecs.PlacementStrategy
		want string // the strategies, or the error's message (part)
	}{
		{"None", nil, "[]"},
		{"Binpack", []ecs.PlacementStrategy{ps("binpack", "memory"), ps("binpack", "CPU")}, "[binpack(memory) binpack(cpu)]"},
		{"Spread", []ecs.PlacementStrategy{ps("spread", "attribute:ecs.availability-zone"), ps("spread", "host"), ps("spread", "instanceId")},
			"[spread(attribute:ecs.availability-zone) spread(instanceId) spread(instanceId)]"},
		{"RandomIgnoresField", []ecs.PlacementStrategy{ps("random", "whatever")}, "[random]"},
		{"ErrBinpackField", []ecs.PlacementStrategy{ps("binpack", "disk")}, `placementStrategy[0]: the binpack field must be cpu or memory, not "disk".`},
		{"ErrSpreadField", []ecs.PlacementStrategy{ps("spread", "zone")}, `the spread field must be instanceId, host or attribute:<name>, not "zone"`},
		{"ErrSpreadNoField", []ecs.PlacementStrategy{ps("spread", "")}, `the spread field must be`},
		{"ErrSpreadBadAttribute", []ecs.PlacementStrategy{ps("spread", "attribute:")}, `the spread field must be`},
		{"ErrType", []ecs.PlacementStrategy{{Field: "memory"}}, "placementStrategy[0].type is required"},
		{"ErrTooMany", slices.Repeat([]ecs.PlacementStrategy{ps("random", "")}, 6), "maximum of 5 placement strategies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStrategies(tc.in)
			if strings.HasPrefix(tc.name, "Err") {
				wantInvalidParameter(t, err, tc.want)
				return
			}
			if err != nil || fmt.Sprint(got) != tc.want && !(tc.want == "[]" && got == nil) {
				t.Errorf("got %v %v, want %s", got, err, tc.want)
			}
		})
	}
}

func TestParseConstraints(t *testing.T) {
	memberOf := func(expr string) ecs.PlacementConstraint {
		return ecs.PlacementConstraint{Type: ecs.PlacementConstraintTypeMemberOf, Expression: expr}
	}
	tdMemberOf := func(expr string) ecs.TaskDefinitionPlacementConstraint {
		return ecs.TaskDefinitionPlacementConstraint{Type: ecs.TaskDefinitionPlacementConstraintTypeMemberOf, Expression: expr}
	}
	distinct := ecs.PlacementConstraint{Type: ecs.PlacementConstraintTypeDistinctInstance}
	for _, tc := range []struct {
		name string
		td   []ecs.TaskDefinitionPlacementConstraint
		call []ecs.PlacementConstraint
		want string
	}{
		{"Merged", []ecs.TaskDefinitionPlacementConstraint{tdMemberOf("attribute:a exists")}, []ecs.PlacementConstraint{distinct, memberOf("task:group == x")},
			"[{attribute:a exists} {} {task:group == x}]"},
		{"ErrTooMany", slices.Repeat([]ecs.TaskDefinitionPlacementConstraint{tdMemberOf("attribute:a exists")}, 6), slices.Repeat([]ecs.PlacementConstraint{distinct}, 5),
			"maximum of 10 placement constraints for each task, including those in the task definition; 11 were given"},
		{"ErrDistinctWithExpression", nil, []ecs.PlacementConstraint{{Type: ecs.PlacementConstraintTypeDistinctInstance, Expression: "x"}},
			"placementConstraints[0]: you cannot specify an expression if the constraint type is distinctInstance."},
		{"ErrMemberOfWithout", nil, []ecs.PlacementConstraint{memberOf(" ")}, "a memberOf placement constraint requires an expression"},
		{"ErrNoType", nil, []ecs.PlacementConstraint{{Expression: "x"}}, "placementConstraints[0].type is required"},
		{"ErrSyntax", nil, []ecs.PlacementConstraint{distinct, memberOf("attribute:stack prod")},
			`Invalid cluster query language expression in placementConstraints[1].expression "attribute:stack prod": expected an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, =~, !~) after attribute:stack at character 17, near "prod".`},
		{"ErrSyntaxInTaskDefinition", []ecs.TaskDefinitionPlacementConstraint{tdMemberOf("task:group = web")}, nil,
			`in the task definition's placementConstraints[0].expression "task:group = web"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConstraints(tc.td, tc.call)
			if strings.HasPrefix(tc.name, "Err") {
				wantInvalidParameter(t, err, tc.want)
				return
			}
			var s []string
			for _, f := range got {
				switch f := f.(type) {
				case MemberOf:
					s = append(s, "{"+f.Expr.String()+"}")
				default:
					s = append(s, fmt.Sprint(f))
				}
			}
			if err != nil || "["+strings.Join(s, " ")+"]" != tc.want {
				t.Errorf("got %v %v, want %s", s, err, tc.want)
			}
		})
	}
}

func wantInvalidParameter(t *testing.T, err error, msg string) {
	t.Helper()
	var ae *awsproto.Error
	if !errors.As(err, &ae) || ae.Code != ecs.ErrCodeInvalidParameterException || !strings.Contains(ae.Message, msg) {
		t.Errorf("got %v, want InvalidParameterException containing %q", err, msg)
	}
}
