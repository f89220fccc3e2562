package query

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxLength is the longest expression ECS accepts ("The expression can have
// a maximum length of 2000 characters").
const MaxLength = 2000

// Subject is what a comparison looks at.
type Subject int

// The subjects of the cluster query language.
const (
	SubjectAttribute         Subject = iota // attribute:<name>
	SubjectTaskGroup                        // task:group
	SubjectAgentConnected                   // agentConnected
	SubjectAgentVersion                     // agentVersion
	SubjectEC2InstanceID                    // ec2InstanceId
	SubjectRegisteredAt                     // registeredAt
	SubjectRunningTasksCount                // runningTasksCount
)

var subjectNames = map[string]Subject{
	"task:group":        SubjectTaskGroup,
	"agentconnected":    SubjectAgentConnected,
	"agentversion":      SubjectAgentVersion,
	"ec2instanceid":     SubjectEC2InstanceID,
	"registeredat":      SubjectRegisteredAt,
	"runningtaskscount": SubjectRunningTasksCount,
}

func (s Subject) String() string {
	return [...]string{"attribute", "task:group", "agentConnected", "agentVersion", "ec2InstanceId", "registeredAt", "runningTasksCount"}[s]
}

// Op is a comparison operator.
type Op int

// The operators, each with its symbol and its word form.
const (
	OpEq         Op = iota // ==, equals
	OpNe                   // !=, not_equals
	OpGt                   // >, greater_than
	OpGe                   // >=, greater_than_equal
	OpLt                   // <, less_than
	OpLe                   // <=, less_than_equal
	OpExists               // exists
	OpNotExists            // !exists, not_exists
	OpIn                   // in
	OpNotIn                // !in, not_in
	OpMatches              // =~, matches
	OpNotMatches           // !~, not_matches
)

var opSymbols = [...]string{"==", "!=", ">", ">=", "<", "<=", "exists", "!exists", "in", "!in", "=~", "!~"}

func (o Op) String() string { return opSymbols[o] }

// symbolOps are tried longest first, so ">=" is not read as ">".
var symbolOps = []struct {
	s  string
	op Op
}{
	{"!exists", OpNotExists}, {"!in", OpNotIn}, {"!=", OpNe}, {"!~", OpNotMatches},
	{"==", OpEq}, {"=~", OpMatches}, {">=", OpGe}, {"<=", OpLe}, {">", OpGt}, {"<", OpLt},
}

var wordOps = map[string]Op{
	"equals": OpEq, "not_equals": OpNe, "greater_than": OpGt, "greater_than_equal": OpGe,
	"less_than": OpLt, "less_than_equal": OpLe, "exists": OpExists, "not_exists": OpNotExists,
	"in": OpIn, "not_in": OpNotIn, "matches": OpMatches, "not_matches": OpNotMatches,
}

// validOps are the operators ECS's documentation lists for each subject;
// attributes and task:group take them all.
var validOps = map[Subject][]Op{
	SubjectAgentConnected:    {OpEq, OpNe, OpIn, OpNotIn, OpMatches, OpNotMatches},
	SubjectAgentVersion:      {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe},
	SubjectEC2InstanceID:     {OpEq, OpNe, OpIn, OpNotIn, OpMatches, OpNotMatches},
	SubjectRegisteredAt:      {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe},
	SubjectRunningTasksCount: {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe},
}

// SyntaxError says why and where an expression could not be parsed.
type SyntaxError struct {
	Expression string
	Offset     int    // byte offset into Expression where it broke
	Msg        string // what was expected or wrong, lowercase
	whole      bool   // about the whole expression (empty, too long): no position
}

// Column is the 1-based character position of Offset.
func (e *SyntaxError) Column() int { return utf8.RuneCountInString(e.Expression[:e.Offset]) + 1 }

func (e *SyntaxError) Error() string {
	if e.whole {
		return e.Msg
	}
	rest := e.Expression[e.Offset:]
	if rest == "" {
		return fmt.Sprintf("%s at the end of the expression (character %d)", e.Msg, e.Column())
	}
	if utf8.RuneCountInString(rest) > 24 {
		r := []rune(rest)
		rest = string(r[:24]) + "..."
	}
	return fmt.Sprintf("%s at character %d, near %q", e.Msg, e.Column(), rest)
}

// Expr is a parsed expression, safe for concurrent use.
type Expr struct {
	src  string
	root node
	uses map[Subject]bool
}

// String is the expression as written.
func (e *Expr) String() string { return e.src }

// Uses reports whether the expression looks at s, so callers can skip
// computing what it does not need (running task counts, say).
func (e *Expr) Uses(s Subject) bool { return e.uses[s] }

// Parse parses an expression. Errors are *SyntaxError.
func Parse(src string) (*Expr, error) {
	p := &parser{src: src, uses: map[Subject]bool{}}
	if n := utf8.RuneCountInString(src); n > MaxLength {
		return nil, &SyntaxError{Expression: src, Msg: fmt.Sprintf("the expression is %d characters long; the maximum is %d", n, MaxLength), whole: true}
	}
	if strings.TrimSpace(src) == "" {
		return nil, &SyntaxError{Expression: src, Msg: "the expression is empty", whole: true}
	}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos < len(src) {
		if src[p.pos] == ')' {
			return nil, p.errorf("unmatched )")
		}
		return nil, p.errorf("expected and, or or the end of the expression")
	}
	return &Expr{src: src, root: root, uses: p.uses}, nil
}

// parser is a recursive descent parser over the expression text. The
// language is context sensitive ("!" is not at the start of a term and part
// of an operator after a subject), so it scans as it parses.
type parser struct {
	src   string
	pos   int
	depth int
	uses  map[Subject]bool
}

// maxDepth bounds nesting so a hostile expression cannot exhaust the stack.
const maxDepth = 100

func (p *parser) errorf(format string, args ...any) *SyntaxError {
	return &SyntaxError{Expression: p.src, Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) space() {
	for p.pos < len(p.src) && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// keyword consumes one of words (case-insensitive) when it stands alone.
func (p *parser) keyword(words ...string) bool {
	for _, w := range words {
		end := p.pos + len(w)
		if end > len(p.src) || !strings.EqualFold(p.src[p.pos:end], w) {
			continue
		}
		if isWordChar(w[len(w)-1]) && end < len(p.src) && isWordChar(p.src[end]) {
			continue // "order" is not "or"
		}
		p.pos = end
		return true
	}
	return false
}

func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func (p *parser) or() (node, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for {
		p.space()
		if !p.keyword("||", "or") {
			return left, nil
		}
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = orNode{left, right}
	}
}

func (p *parser) and() (node, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		p.space()
		if !p.keyword("&&", "and") {
			return left, nil
		}
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = andNode{left, right}
	}
}

func (p *parser) unary() (node, error) {
	p.space()
	if p.pos == len(p.src) {
		return nil, p.errorf("expected an expression")
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.errorf("expressions nest more than %d deep", maxDepth)
	}
	negated := p.src[p.pos] == '!'
	if negated {
		p.pos++
	} else {
		negated = p.keyword("not")
	}
	if negated {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	if p.src[p.pos] == '(' {
		open := p.pos
		p.pos++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos == len(p.src) || p.src[p.pos] != ')' {
			err := p.errorf("expected )")
			err.Msg = fmt.Sprintf("expected ) to close the ( opened at character %d", utf8.RuneCountInString(p.src[:open])+1)
			return nil, err
		}
		p.pos++
		return x, nil
	}
	return p.comparison()
}

// comparison parses "subject operator [argument]".
func (p *parser) comparison() (node, error) {
	start := p.pos
	for p.pos < len(p.src) && isSubjectChar(p.src[p.pos]) {
		p.pos++
	}
	word := p.src[start:p.pos]
	if word == "" {
		return nil, p.errorf("expected a subject (attribute:<name>, task:group, agentConnected, agentVersion, ec2InstanceId, registeredAt or runningTasksCount)")
	}
	c := &cmpNode{}
	switch name, ok := strings.CutPrefix(word, "attribute:"); {
	case ok:
		if name == "" || len(name) > 128 {
			p.pos = start + len("attribute:")
			return nil, p.errorf("expected an attribute name (1-128 letters, numbers, hyphens, underscores, slashes or periods) after attribute:")
		}
		c.subject, c.attr = SubjectAttribute, name
	default:
		s, ok := subjectNames[strings.ToLower(word)]
		if !ok {
			p.pos = start
			return nil, p.errorf("unknown subject %q: want attribute:<name>, task:group, agentConnected, agentVersion, ec2InstanceId, registeredAt or runningTasksCount", word)
		}
		c.subject = s
	}
	p.uses[c.subject] = true

	p.space()
	opAt := p.pos
	op, ok := p.operator()
	if !ok {
		return nil, p.errorf("expected an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, =~, !~) after %s", word)
	}
	c.op = op
	if valid, limited := validOps[c.subject]; limited && !contains(valid, op) {
		p.pos = opAt
		return nil, p.errorf("%s does not support the %s operator (it takes %s)", c.subject, op, opList(valid))
	}
	switch op {
	case OpExists, OpNotExists:
		return c, nil
	case OpIn, OpNotIn:
		p.space()
		if p.pos == len(p.src) || p.src[p.pos] != '[' {
			return nil, p.errorf("expected a list such as [a, b] after %s", op)
		}
		p.pos++
		for {
			p.space()
			if p.pos < len(p.src) && p.src[p.pos] == ']' && len(c.args) == 0 {
				p.pos++
				break
			}
			if err := p.argument(c); err != nil {
				return nil, err
			}
			p.space()
			if p.pos < len(p.src) && p.src[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.src) && p.src[p.pos] == ']' {
				p.pos++
				break
			}
			return nil, p.errorf("expected , or ] in the list")
		}
	default:
		if err := p.argument(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func isSubjectChar(c byte) bool {
	return isWordChar(c) || c == '-' || c == '.' || c == '/' || c == '\\' || c == ':'
}

// operator reads a symbol or word operator.
func (p *parser) operator() (Op, bool) {
	rest := p.src[p.pos:]
	for _, s := range symbolOps {
		if !strings.HasPrefix(rest, s.s) {
			continue
		}
		if isWordChar(s.s[len(s.s)-1]) && len(rest) > len(s.s) && isWordChar(rest[len(s.s)]) {
			return 0, false // "!inside"
		}
		p.pos += len(s.s)
		return s.op, true
	}
	end := 0
	for end < len(rest) && isWordChar(rest[end]) {
		end++
	}
	op, ok := wordOps[strings.ToLower(rest[:end])]
	if ok {
		p.pos += end
	}
	return op, ok
}

// argument reads one value, quoted ('...' or "...") or bare, checks it for
// the comparison and appends it to c.
func (p *parser) argument(c *cmpNode) error {
	p.space()
	at := p.pos
	var v string
	if p.pos < len(p.src) && (p.src[p.pos] == '\'' || p.src[p.pos] == '"') {
		q := p.src[p.pos]
		end := strings.IndexByte(p.src[p.pos+1:], q)
		if end < 0 {
			return p.errorf("unterminated quoted value")
		}
		v = p.src[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
	} else {
		for p.pos < len(p.src) && !endsBareValue(p.src[p.pos:]) {
			p.pos++
		}
		v = p.src[at:p.pos]
		if v == "" {
			return p.errorf("expected a value after %s (quote values that contain spaces, parentheses, brackets or commas)", c.op)
		}
	}
	if err := c.addArg(v); err != nil {
		p.pos = at
		return p.errorf("%s", err)
	}
	return nil
}

func endsBareValue(s string) bool {
	switch s[0] {
	case ' ', '\t', '\n', '\r', '(', ')', '[', ']', ',', '\'', '"':
		return true
	}
	return strings.HasPrefix(s, "&&") || strings.HasPrefix(s, "||")
}

// addArg checks a value against the comparison's subject and operator and
// keeps it in the form evaluation needs.
func (c *cmpNode) addArg(v string) error {
	switch {
	case c.op == OpMatches || c.op == OpNotMatches:
		re, err := regexp.Compile(`^(?:` + v + `)$`)
		if err != nil {
			return fmt.Errorf("invalid regular expression %q: %v", v, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		c.re = re
	case c.subject == SubjectAgentConnected:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return fmt.Errorf("agentConnected is true or false, not %q", v)
		}
		c.bools = append(c.bools, strings.EqualFold(v, "true"))
	case c.subject == SubjectRunningTasksCount:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("runningTasksCount is compared with a whole number, not %q", v)
		}
		c.ints = append(c.ints, n)
	case c.subject == SubjectRegisteredAt:
		t, day, err := parseDate(v)
		if err != nil {
			return fmt.Errorf("registeredAt is compared with a date such as 2018-06-18, 2018-06-18T22:28:28 or 2018-06-18T22:28:28Z, not %q", v)
		}
		c.times, c.day = append(c.times, t), day
	}
	c.args = append(c.args, v)
	return nil
}

// parseDate reads the formats ECS documents for registeredAt:
// 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 (UTC)
// and 2018-06-18 (a whole day, UTC).
func parseDate(v string) (t time.Time, day bool, err error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, false, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05", v); err == nil {
		return t, false, nil
	}
	t, err = time.Parse(time.DateOnly, v)
	return t, true, err
}

func contains(ops []Op, op Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func opList(ops []Op) string {
	s := make([]string, len(ops))
	for i, o := range ops {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
}
