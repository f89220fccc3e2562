package query

import (
	"errors"
	"flag"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// inst is a container instance for tests.
type inst struct {
	attrs     map[string]string
	groups    []string
	connected bool
	version   string
	ec2       string
	at        time.Time
	running   int
}

func (i inst) Attribute(n string) (string, bool) { v, ok := i.attrs[n]; return v, ok }
func (i inst) TaskGroups() iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, g := range i.groups {
			if !yield(g) {
				return
			}
		}
	}
}
func (i inst) AgentConnected() bool    { return i.connected }
func (i inst) AgentVersion() string    { return i.version }
func (i inst) EC2InstanceID() string   { return i.ec2 }
func (i inst) RegisteredAt() time.Time { return i.at }
func (i inst) RunningTasksCount() int  { return i.running }

var t2 = inst{
	attrs: map[string]string{
		"ecs.instance-type": "t2.small", "ecs.availability-zone": "us-east-1a", "stack": "prod",
		"ecs.capability.x": "", "cores": "8",
	},
	groups:    []string{"service:production", "family:web"},
	connected: true,
	version:   "1.14.5",
	ec2:       "i-abcd1234",
	at:        time.Date(2026, 3, 4, 10, 30, 15, 250e6, time.UTC),
	running:   2,
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want bool
	}{
		// ECS's documented examples.
		{"attribute:ecs.instance-type == t2.small", true},
		{"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true},
		{"attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", false},
		{"attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d", true},
		{"task:group == service:production", true},
		{"not(task:group == database)", true},
		{"not(task:group == service:production)", false},
		{"runningTasksCount == 1", false},
		{"runningTasksCount == 2", true},
		{"agentVersion < 1.14.5", false},
		{"agentVersion < 1.15", true},
		{"agentVersion >= 1.9.0", true}, // numerically, 14 > 9
		{"registeredAt < 2018-02-13", false},
		{"registeredAt >= 2026-01-01", true},
		{"ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true},
		{"attribute:ecs.instance-type == g2.2xlarge", false},
		{"attribute:stack == prod", true},
		{"attribute:stack != prod", false},
		{"attribute:ecs.instance-type in [t2.small, t2.medium]", true},
		{"attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone == us-east-1a", true},
		{"agentConnected == true", true},

		// Word operators, symbols, case and spacing.
		{"attribute:stack equals prod", true},
		{"attribute:stack not_equals dev", true},
		{"attribute:stack==prod", true},
		{"attribute:stack == prod AND agentConnected == TRUE", true},
		{"attribute:stack == dev || attribute:stack == prod", true},
		{"attribute:stack == dev && attribute:stack == prod", false},
		{"attribute:stack == dev or attribute:stack == prod and agentConnected == false", false}, // and binds tighter
		{"(attribute:stack == dev or attribute:stack == prod) and agentConnected == true", true},
		{"!(attribute:stack == dev)", true},
		{"not not attribute:stack == prod", true},
		{"AGENTCONNECTED == true", true},
		{"  attribute:stack   ==   'prod'  ", true},
		{`attribute:stack == "prod"`, true},

		// Missing attributes satisfy neither == nor !=; exists tests presence.
		{"attribute:missing != prod", false},
		{"attribute:missing == prod", false},
		{"attribute:missing !in [a]", false},
		{"attribute:missing !exists", true},
		{"attribute:missing not_exists", true},
		{"attribute:stack exists", true},
		{"attribute:ecs.capability.x exists", true},
		{"attribute:ecs.capability.x == ''", true},

		// Pattern matching is on the whole value (Java's Pattern.matches).
		{"attribute:ecs.instance-type =~ t2", false},
		{"attribute:ecs.instance-type matches 't2\\.(small|medium)'", true},
		{"attribute:ecs.instance-type !~ m5.*", true},
		{"attribute:ecs.instance-type not_matches t2.*", false},

		// Ordering: numbers numerically, other values as strings.
		{"attribute:cores > 10", false},
		{"attribute:cores greater_than_equal 8", true},
		{"attribute:stack > alpha", true},
		{"attribute:missing < 1", false},

		// task:group has one value per group on the instance.
		{"task:group != service:production", true}, // family:web is another group
		{"task:group in [family:api, family:web]", true},
		{"task:group =~ service:.*", true},
		{"task:group exists", true},
		{"task:group !in [service:production, family:web]", false},

		// agentConnected, runningTasksCount, registeredAt.
		{"agentConnected != true", false},
		{"agentConnected in [false]", false},
		{"agentConnected =~ tr.*", true},
		{"runningTasksCount > 1 and runningTasksCount <= 2", true},
		{"runningTasksCount less_than 2", false},
		{"registeredAt == 2026-03-04", true},
		{"registeredAt > 2026-03-04", false},
		{"registeredAt == 2026-03-04T10:30:15Z", true},
		{"registeredAt == 2026-03-04T12:30:15+02:00", true},
		{"registeredAt < 2026-03-04T10:30:16", true},
		{"ec2InstanceId =~ i-.*", true},
		{"ec2InstanceId != i-abcd1234", false},
		{"agentVersion == 1.14.5", true},
		{"agentVersion > v1.14.4", true},
		{"agentVersion <= 1.14.5-rc1", false},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Match(t2); got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMatchEmptyInstance(t *testing.T) {
	empty := inst{}
	for expr, want := range map[string]bool{
		"task:group != db":          false, // no groups: no value is other than db
		"not(task:group == db)":     true,
		"task:group !exists":        true,
		"runningTasksCount == 0":    true,
		"agentConnected == false":   true,
		"attribute:stack !~ prod":   false,
		"registeredAt < 2000-01-01": true,
	} {
		e, err := Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Match(empty); got != want {
			t.Errorf("%s: Match = %v, want %v", expr, got, want)
		}
	}
}

func TestUses(t *testing.T) {
	e, err := Parse("attribute:a == b or not(runningTasksCount > 3)")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Uses(SubjectRunningTasksCount) || !e.Uses(SubjectAttribute) || e.Uses(SubjectTaskGroup) {
		t.Errorf("uses: %v", e.uses)
	}
	if e.String() != "attribute:a == b or not(runningTasksCount > 3)" {
		t.Errorf("String: %q", e.String())
	}
}

// TestSyntaxErrors compares the errors of malformed expressions with
// testdata/errors.golden (go test -run SyntaxErrors -update rewrites it).
// Each error names what was expected and where.
func TestSyntaxErrors(t *testing.T) {
	var b strings.Builder
	for _, expr := range []string{
		"",
		"   ",
		"attribute:stack prod",
		"attribute:stack ==",
		"attribute: == prod",
		"attribute:stack === prod",
		"stack == prod",
		"attribute:stack == prod and",
		"attribute:stack == prod extra",
		"(attribute:stack == prod",
		"attribute:stack == prod)",
		"((attribute:a == b) or attribute:c == d",
		"attribute:zone in us-east-1a",
		"attribute:zone in [a, b",
		"attribute:zone in [a b]",
		"attribute:zone in [a,,b]",
		"attribute:type =~ (t2|m5).*",
		"attribute:type =~ '(t2|m5'",
		"attribute:type == 'unterminated",
		"agentConnected == yes",
		"agentConnected > true",
		"agentVersion in [1.0]",
		"runningTasksCount == many",
		"runningTasksCount exists",
		"registeredAt >= yesterday",
		"registeredAt >= 2026-13-01",
		"ec2InstanceId < i-1",
		"task:groups == web",
		"not",
		"attribute:a == b or or attribute:c == d",
		"attribute:a !inside [b]",
		"attribute:a == b &&& attribute:c == d",
		"!",
		strings.Repeat("(", 101) + "attribute:a == b" + strings.Repeat(")", 101),
		"attribute:a == " + strings.Repeat("x", MaxLength),
		"attribute:" + strings.Repeat("n", 129) + " exists",
		"attribute:é == b",
		"attribute:a == b and attribute:c ≠ d",
	} {
		_, err := Parse(expr)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: got %v, want a *SyntaxError", expr, err)
			continue
		}
		shown := expr
		if len(shown) > 80 {
			shown = shown[:40] + fmt.Sprintf("...(%d bytes)", len(expr))
		}
		fmt.Fprintf(&b, "%q\n\t%s\n", shown, err)
	}
	golden := filepath.Join("testdata", "errors.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("errors differ from %s (run with -update to accept):\n%s", golden, b.String())
	}
}

// FuzzParse: no expression makes Parse panic; errors are *SyntaxError with
// an offset inside the expression; whatever parses can be evaluated.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
		"not(task:group == database)", "agentConnected == true", "registeredAt >= 2026-01-01",
		"runningTasksCount <= 3 || agentVersion > 1.2.3", "ec2InstanceId in ['i-1', \"i-2\"]", "!(a)", "attribute:x !exists",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("%q: error %T %v", s, err, err)
			}
			if se.Offset < 0 || se.Offset > len(s) {
				t.Fatalf("%q: offset %d outside the expression", s, se.Offset)
			}
			_ = se.Error()
			return
		}
		e.Match(t2)
		e.Match(inst{})
		if e.String() != s {
			t.Fatalf("String() = %q", e.String())
		}
		// Parsing is deterministic: the same text gives the same verdicts.
		again, err := Parse(s)
		if err != nil || again.Match(t2) != e.Match(t2) {
			t.Fatalf("%q parsed twice: %v", s, err)
		}
	})
}
