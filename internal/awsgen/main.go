// Command awsgen turns an AWS service model (botocore's service-2.json) into
// Go wire types for the JSON protocols: structs, enums, error codes, the
// operation table and Validate methods for required members and enum values.
//
//	go run ./internal/awsgen -model models/ecs/2014-11-13/service-2.json -pkg ecs -out zz_generated.go
//
// Type mapping follows what the services put on the wire: members the model
// marks "box" (nullable) become pointers and are omitted when unset, while
// unboxed primitives are values that are always sent (ECS returns "cpu": 0).
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"go/token"
	"html"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

const awsprotoImport = "github.com/gantry-dev/gantry/internal/awsproto"

func main() {
	modelPath := flag.String("model", "", "path to a botocore service-2.json")
	pkg := flag.String("pkg", "", "Go package name of the generated file")
	out := flag.String("out", "", "output file")
	rename := flag.String("rename", "", "comma-separated Shape=GoName type renames, for shape names that clash with hand-written code")
	flag.Parse()
	if *modelPath == "" || *pkg == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	data, err := os.ReadFile(*modelPath)
	if err == nil {
		var renames map[string]string
		if renames, err = parseRenames(*rename); err == nil {
			data, err = generate(data, *pkg, filepath.ToSlash(*modelPath), renames)
		}
	}
	if err == nil {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "awsgen:", err)
		os.Exit(1)
	}
}

func parseRenames(s string) (map[string]string, error) {
	renames := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		from, to, ok := strings.Cut(kv, "=")
		if !ok || from == "" || !token.IsIdentifier(to) || !token.IsExported(to) {
			return nil, fmt.Errorf("-rename: want Shape=ExportedGoName, got %q", kv)
		}
		renames[from] = to
	}
	return renames, nil
}

// The subset of the botocore model format awsgen reads.
type (
	model struct {
		Metadata struct {
			TargetPrefix string `json:"targetPrefix"`
			SigningName  string `json:"signingName"`
		} `json:"metadata"`
		Operations map[string]struct {
			Name   string `json:"name"`
			Input  *ref   `json:"input"`
			Output *ref   `json:"output"`
		} `json:"operations"`
		Shapes map[string]*shape `json:"shapes"`
	}
	ref struct {
		Shape         string `json:"shape"`
		Box           bool   `json:"box"`
		LocationName  string `json:"locationName"`
		Documentation string `json:"documentation"`
	}
	shape struct {
		Type          string   `json:"type"`
		Members       members  `json:"members"`
		Required      []string `json:"required"`
		Enum          []string `json:"enum"`
		Box           bool     `json:"box"`
		Exception     bool     `json:"exception"`
		Document      bool     `json:"document"`
		Documentation string   `json:"documentation"`
		Member        *ref     `json:"member"` // list element
		Key, Value    *ref     // map key and value
		Error         *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	member struct {
		Name string
		ref
	}
)

// members keeps structure members in model order (a Go map would lose it), so
// fields, wire output and "first violation" follow the model's documentation.
type members []member

func (ms *members) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("members: want an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		m := member{Name: tok.(string)}
		if err := dec.Decode(&m.ref); err != nil {
			return fmt.Errorf("member %s: %w", m.Name, err)
		}
		*ms = append(*ms, m)
	}
	return nil
}

type gen struct {
	m       *model
	names   []string            // all shape names, sorted
	inputs  map[string]bool     // structures reachable from an operation input
	checked map[string]bool     // shapes whose values need a Validate check
	docFor  map[string]string   // fallback docs for request/response shapes
	consts  map[string][]string // enum shape -> constant names, in model order
	global  map[string]string   // package-level identifier -> what claimed it
	imports map[string]bool
	renames map[string]string // shape -> Go type name
	b       bytes.Buffer
}

// generate returns the gofmt'ed Go source for the model in data.
func generate(data []byte, pkg, source string, renames map[string]string) ([]byte, error) {
	g := &gen{m: new(model), inputs: map[string]bool{}, checked: map[string]bool{}, docFor: map[string]string{},
		consts: map[string][]string{}, global: map[string]string{}, imports: map[string]bool{}, renames: renames}
	if err := json.Unmarshal(data, g.m); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	for from := range renames {
		if _, ok := g.m.Shapes[from]; !ok || !(g.isStruct(from) || g.isEnum(from)) {
			return nil, fmt.Errorf("-rename %s: no structure or enum shape of that name", from)
		}
	}
	g.names = slices.Sorted(maps.Keys(g.m.Shapes))
	for _, name := range g.names {
		if err := g.checkShape(name, g.m.Shapes[name]); err != nil {
			return nil, err
		}
	}
	if err := g.claimNames(); err != nil {
		return nil, err
	}
	g.findInputs()
	g.findChecked()

	g.emitOperations()
	g.emitExceptions()
	for _, name := range g.names {
		if sh := g.m.Shapes[name]; sh.Type == "string" && len(sh.Enum) > 0 {
			g.emitEnum(name, sh)
		}
	}
	for _, name := range g.names {
		if g.isStruct(name) {
			g.emitStruct(name, g.m.Shapes[name])
		}
	}

	var src bytes.Buffer
	fmt.Fprintf(&src, "// Code generated by awsgen from %s; DO NOT EDIT.\n\npackage %s\n\n", source, pkg)
	if len(g.imports) > 0 {
		var std, other []string // grouped as goimports does
		for imp := range g.imports {
			if strings.Contains(imp, ".") {
				other = append(other, imp)
			} else {
				std = append(std, imp)
			}
		}
		src.WriteString("import (\n")
		for _, group := range [][]string{std, other} {
			slices.Sort(group)
			for _, imp := range group {
				fmt.Fprintf(&src, "%q\n", imp)
			}
			src.WriteString("\n")
		}
		src.WriteString(")\n\n")
	}
	src.Write(g.b.Bytes())
	out, err := format.Source(src.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting generated code (a generator bug): %w", err)
	}
	return out, nil
}

var shapeTypes = []string{"string", "integer", "long", "double", "float", "boolean", "blob", "timestamp", "list", "map", "structure"}

// checkShape fails early on a model we cannot map, rather than emitting Go
// that does not compile.
func (g *gen) checkShape(name string, sh *shape) error {
	if !slices.Contains(shapeTypes, sh.Type) {
		return fmt.Errorf("shape %s: unsupported type %q", name, sh.Type)
	}
	var refs []*ref
	for i := range sh.Members {
		refs = append(refs, &sh.Members[i].ref)
	}
	switch sh.Type {
	case "list":
		refs = append(refs, sh.Member)
	case "map":
		refs = append(refs, sh.Key, sh.Value)
	}
	for _, r := range refs {
		if r == nil {
			return fmt.Errorf("shape %s: missing member/key/value", name)
		}
		t, ok := g.m.Shapes[r.Shape]
		if !ok {
			return fmt.Errorf("shape %s refers to unknown shape %s", name, r.Shape)
		}
		if t.Exception {
			return fmt.Errorf("shape %s refers to exception %s, which gets no struct", name, r.Shape)
		}
	}
	return nil
}

func (g *gen) isStruct(name string) bool {
	sh := g.m.Shapes[name]
	return sh.Type == "structure" && !sh.Exception && !sh.Document
}

func (g *gen) isEnum(name string) bool {
	sh := g.m.Shapes[name]
	return sh.Type == "string" && len(sh.Enum) > 0
}

// claimNames reserves every package-level identifier. Type names clashing is
// an error (the model would need a rename); enum constants are disambiguated.
func (g *gen) claimNames() error {
	claim := func(id, owner string) error {
		if prev, ok := g.global[id]; ok {
			return fmt.Errorf("identifier %s is claimed by both %s and %s", id, prev, owner)
		}
		g.global[id] = owner
		return nil
	}
	for _, id := range []string{"TargetPrefix", "SigningName", "Operation", "Operations", "ExceptionCodes"} {
		claim(id, "awsgen")
	}
	for _, name := range g.names {
		sh := g.m.Shapes[name]
		var err error
		switch {
		case sh.Exception:
			err = claim("ErrCode"+goIdent(name), name)
		case g.isStruct(name):
			err = claim(g.typeName(name), name)
		case g.isEnum(name):
			if err = claim(g.typeName(name), name); err == nil {
				err = claim(g.typeName(name)+"Values", name)
			}
		}
		if err != nil {
			return err
		}
	}
	for _, name := range g.names {
		if !g.isEnum(name) {
			continue
		}
		for i, v := range g.m.Shapes[name].Enum {
			base := g.typeName(name) + pascal(v)
			if base == g.typeName(name) {
				base += "Value" + strconv.Itoa(i+1)
			}
			id := base
			for n := 2; g.global[id] != ""; n++ {
				id = base + "_" + strconv.Itoa(n)
			}
			g.global[id] = name
			g.consts[name] = append(g.consts[name], id)
		}
	}
	return nil
}

// findInputs marks the structures reachable from operation inputs: those get
// Validate methods.
func (g *gen) findInputs() {
	var walk func(string)
	walk = func(name string) {
		sh := g.m.Shapes[name]
		switch {
		case sh.Type == "list":
			walk(sh.Member.Shape)
		case sh.Type == "map":
			walk(sh.Key.Shape)
			walk(sh.Value.Shape)
		case g.isStruct(name) && !g.inputs[name]:
			g.inputs[name] = true
			for _, m := range sh.Members {
				walk(m.Shape)
			}
		}
	}
	for _, opName := range slices.Sorted(maps.Keys(g.m.Operations)) {
		op := g.m.Operations[opName]
		if op.Input != nil {
			walk(op.Input.Shape)
			g.docFor[op.Input.Shape] = cmp.Or(g.docFor[op.Input.Shape], "is the input of the "+opName+" operation.")
		}
		if op.Output != nil {
			g.docFor[op.Output.Shape] = cmp.Or(g.docFor[op.Output.Shape], "is the output of the "+opName+" operation.")
		}
	}
}

// findChecked computes, as a fixpoint (shapes may be recursive), which shapes
// hold something Validate can reject: an enum, or a structure with a
// checkable required member or a checked member.
func (g *gen) findChecked() {
	for changed := true; changed; {
		changed = false
		for _, name := range g.names {
			if g.checked[name] || !g.needsCheck(name) {
				continue
			}
			g.checked[name], changed = true, true
		}
	}
}

func (g *gen) needsCheck(name string) bool {
	sh := g.m.Shapes[name]
	switch {
	case g.isEnum(name):
		return true
	case sh.Type == "list":
		return g.checked[sh.Member.Shape]
	case sh.Type == "map":
		return g.isEnum(sh.Key.Shape) || g.checked[sh.Value.Shape]
	case g.isStruct(name):
		for _, m := range sh.Members {
			if g.checked[m.Shape] || (slices.Contains(sh.Required, m.Name) && g.missingCond("x", m.ref) != "") {
				return true
			}
		}
	}
	return false
}

func (g *gen) emitOperations() {
	w := &g.b
	fmt.Fprintf(w, "// TargetPrefix is the X-Amz-Target prefix of the service's operations.\nconst TargetPrefix = %q\n\n", g.m.Metadata.TargetPrefix)
	fmt.Fprintf(w, "// SigningName is the SigV4 service name requests are signed for.\nconst SigningName = %q\n\n", g.m.Metadata.SigningName)
	w.WriteString(`// Operation describes one API operation and makes its request and response values.
type Operation struct {
	Name      string
	NewInput  func() any
	NewOutput func() any
}

// Operations are the service's operations by name, as in "X-Amz-Target: <TargetPrefix>.<Name>".
var Operations = map[string]Operation{
`)
	newOf := func(r *ref) string {
		if r == nil {
			return "func() any { return new(struct{}) }"
		}
		return "func() any { return new(" + g.typeName(r.Shape) + ") }"
	}
	for _, name := range slices.Sorted(maps.Keys(g.m.Operations)) {
		op := g.m.Operations[name]
		fmt.Fprintf(w, "%q: {Name: %q, NewInput: %s, NewOutput: %s},\n", name, name, newOf(op.Input), newOf(op.Output))
	}
	w.WriteString("}\n\n")
}

func (g *gen) emitExceptions() {
	var names, codes []string
	for _, name := range g.names {
		if sh := g.m.Shapes[name]; sh.Exception {
			code := name
			if sh.Error != nil && sh.Error.Code != "" {
				code = sh.Error.Code
			}
			names, codes = append(names, name), append(codes, code)
		}
	}
	if len(names) == 0 {
		return
	}
	w := &g.b
	w.WriteString("// Error codes of the service's exceptions, as sent in __type.\nconst (\n")
	for i, name := range names {
		if doc := firstSentence(g.m.Shapes[name].Documentation); doc != "" {
			fmt.Fprintf(w, "// %s\n", doc)
		}
		fmt.Fprintf(w, "ErrCode%s = %q\n", goIdent(name), codes[i])
	}
	w.WriteString(")\n\n// ExceptionCodes lists every error code the model defines.\nvar ExceptionCodes = []string{\n")
	for _, name := range names {
		fmt.Fprintf(w, "ErrCode%s,\n", goIdent(name))
	}
	w.WriteString("}\n\n")
}

func (g *gen) emitEnum(name string, sh *shape) {
	w, typ, consts := &g.b, g.typeName(name), g.consts[name]
	g.typeDoc(name, sh, "is an enum of the model.")
	fmt.Fprintf(w, "type %s string\n\nconst (\n", typ)
	for i, v := range sh.Enum {
		fmt.Fprintf(w, "%s %s = %q\n", consts[i], typ, v)
	}
	// A value repeated in the model would make a duplicate case, which does not compile.
	var uniq []string
	seen := map[string]bool{}
	for i, v := range sh.Enum {
		if !seen[v] {
			seen[v] = true
			uniq = append(uniq, consts[i])
		}
	}
	fmt.Fprintf(w, ")\n\n// Valid reports whether v is one of the values the model defines.\nfunc (v %s) Valid() bool {\nswitch v {\ncase %s:\nreturn true\n}\nreturn false\n}\n\n",
		typ, strings.Join(uniq, ", "))
	fmt.Fprintf(w, "// %sValues returns the values of %s in model order.\nfunc %sValues() []%s {\nreturn []%s{%s}\n}\n\n",
		typ, typ, typ, typ, typ, strings.Join(uniq, ", "))
}

// typeDoc writes a type's doc comment: the model's first sentence, else what
// the type is for.
func (g *gen) typeDoc(name string, sh *shape, fallback string) {
	typ, doc := g.typeName(name), firstSentence(sh.Documentation)
	if _, renamed := g.renames[name]; renamed {
		fallback = "is the model's shape " + name + ", renamed to avoid a clash in the package."
		if doc != "" {
			doc += " (Shape " + name + " in the model.)"
		}
	}
	if doc != "" {
		fmt.Fprintf(&g.b, "// %s: %s\n", typ, doc)
	} else {
		fmt.Fprintf(&g.b, "// %s %s\n", typ, cmp.Or(g.docFor[name], fallback))
	}
}

type field struct {
	name string
	member
}

func (g *gen) emitStruct(name string, sh *shape) {
	w, typ := &g.b, g.typeName(name)
	g.typeDoc(name, sh, "is a structure of the model.")
	fmt.Fprintf(w, "type %s struct {\n", typ)
	var fields []field
	used := map[string]bool{}
	if g.inputs[name] {
		used["Validate"] = true // the method name
	}
	for _, m := range sh.Members {
		id := cmp.Or(pascal(m.Name), "Member") // a name of punctuation only
		for base, n := id, 2; used[id]; n++ {
			id = base + strconv.Itoa(n)
		}
		used[id] = true
		fields = append(fields, field{id, m})
		wire := m.Name
		if m.LocationName != "" {
			wire = m.LocationName
		}
		gotype, opt := g.memberType(m.ref)
		if opt != "" {
			opt = "," + opt
		}
		if doc := firstSentence(m.Documentation); doc != "" {
			fmt.Fprintf(w, "// %s\n", doc)
		}
		fmt.Fprintf(w, "%s %s `json:\"%s%s\"`\n", id, gotype, wire, opt)
	}
	w.WriteString("}\n\n")
	if g.inputs[name] {
		g.emitValidate(typ, sh, fields)
	}
}

// memberType maps a structure member to its Go type and json omit option.
func (g *gen) memberType(r ref) (gotype, opt string) {
	sh := g.m.Shapes[r.Shape]
	switch sh.Type {
	case "integer", "long", "double", "float", "boolean":
		if sh.Box || r.Box {
			return "*" + g.elemType(r.Shape), "omitempty"
		}
		return g.elemType(r.Shape), "" // unboxed primitives are always on the wire
	case "structure":
		if sh.Document {
			return g.elemType(r.Shape), "omitempty"
		}
		return "*" + g.elemType(r.Shape), "omitempty"
	case "timestamp", "list", "map":
		// omitzero omits nil but keeps an empty slice as [], as ECS sends it.
		return g.elemType(r.Shape), "omitzero"
	default: // string, enum, blob
		return g.elemType(r.Shape), "omitempty"
	}
}

// elemType maps a shape to its Go type where it is held by value: in lists,
// maps, and for non-pointer members.
func (g *gen) elemType(name string) string {
	sh := g.m.Shapes[name]
	switch sh.Type {
	case "string":
		if len(sh.Enum) > 0 {
			return g.typeName(name)
		}
		return "string"
	case "integer":
		return "int32"
	case "long":
		return "int64"
	case "double":
		return "float64"
	case "float":
		return "float32"
	case "boolean":
		return "bool"
	case "blob":
		return "[]byte"
	case "timestamp":
		g.imports[awsprotoImport] = true
		return "awsproto.Timestamp"
	case "list":
		return "[]" + g.elemType(sh.Member.Shape)
	case "map":
		return "map[" + g.elemType(sh.Key.Shape) + "]" + g.elemType(sh.Value.Shape)
	case "structure":
		if sh.Document {
			g.imports["encoding/json"] = true
			return "json.RawMessage"
		}
		return g.typeName(name)
	}
	panic("unreachable: checkShape rejects type " + sh.Type)
}

// missingCond is the Go condition for "required member r of s is absent", or
// "" when absence cannot be told: unboxed primitives decode to their zero value.
func (g *gen) missingCond(expr string, r ref) string {
	gotype, _ := g.memberType(r)
	switch {
	case strings.HasPrefix(gotype, "*"), strings.HasPrefix(gotype, "[]"), strings.HasPrefix(gotype, "map["), gotype == "json.RawMessage":
		return expr + " == nil"
	case gotype == "awsproto.Timestamp":
		return expr + ".IsZero()"
	case g.m.Shapes[r.Shape].Type == "string":
		return expr + ` == ""`
	}
	return ""
}

func (g *gen) emitValidate(typ string, sh *shape, fields []field) {
	g.imports[awsprotoImport] = true
	w := &g.b
	fmt.Fprintf(w, "// Validate checks required members and enum values, recursively; it\n// returns the first violation as an *awsproto.ValidationError.\n")
	fmt.Fprintf(w, "func (s *%s) Validate(path string) error {\nif s == nil {\nreturn nil\n}\n", typ)
	for _, f := range fields {
		expr, path := "s."+f.name, fmt.Sprintf("awsproto.JoinPath(path, %q)", f.Name)
		if cond := g.missingCond(expr, f.ref); cond != "" && slices.Contains(sh.Required, f.Name) {
			fmt.Fprintf(w, "if %s {\nreturn awsproto.Missing(%s)\n}\n", cond, path)
		}
		g.emitCheck(expr, path, f.Shape, true, 0)
	}
	w.WriteString("return nil\n}\n\n")
}

// emitCheck writes the checks of value expr of the named shape, located at
// the Go string expression path. For members, the zero value means "unset"
// and is not checked against the enum.
func (g *gen) emitCheck(expr, path, name string, isMember bool, depth int) {
	if !g.checked[name] {
		return
	}
	w, sh := &g.b, g.m.Shapes[name]
	switch {
	case g.isEnum(name):
		cond := "!" + expr + ".Valid()"
		if isMember {
			cond = expr + ` != "" && ` + cond
		}
		fmt.Fprintf(w, "if %s {\nreturn awsproto.InvalidEnum(%s, %s, %sValues())\n}\n", cond, path, expr, g.typeName(name))
	case g.isStruct(name):
		fmt.Fprintf(w, "if err := %s.Validate(%s); err != nil {\nreturn err\n}\n", expr, path)
	case sh.Type == "list":
		i := tmp("i", depth)
		fmt.Fprintf(w, "for %s := range %s {\n", i, expr)
		g.emitCheck(expr+"["+i+"]", "awsproto.IndexPath("+path+", "+i+")", sh.Member.Shape, false, depth+1)
		w.WriteString("}\n")
	case sh.Type == "map":
		// Sorted keys, so "the first violation" is deterministic.
		g.imports["maps"], g.imports["slices"] = true, true
		k := tmp("k", depth)
		fmt.Fprintf(w, "for _, %s := range slices.Sorted(maps.Keys(%s)) {\n", k, expr)
		keyPath := "awsproto.KeyPath(" + path + ", " + k + ")"
		g.emitCheck(k, keyPath, sh.Key.Shape, false, depth+1)
		if g.checked[sh.Value.Shape] {
			v := tmp("v", depth) // map values are not addressable; Validate has a pointer receiver
			fmt.Fprintf(w, "%s := %s[%s]\n", v, expr, k)
			g.emitCheck(v, keyPath, sh.Value.Shape, false, depth+1)
		}
		w.WriteString("}\n")
	}
}

// tmp names loop variables by nesting depth (i, i1, ...), so inner loops do
// not shadow outer ones and names do not churn when the model grows.
func tmp(prefix string, depth int) string {
	if depth == 0 {
		return prefix
	}
	return prefix + strconv.Itoa(depth)
}

// initialisms are spelled the Go way when they are a whole word of a name.
var initialisms = map[string]string{
	"api": "API", "arn": "ARN", "aws": "AWS", "cpu": "CPU", "dns": "DNS", "ebs": "EBS", "ec2": "EC2",
	"ecr": "ECR", "ecs": "ECS", "efs": "EFS", "fips": "FIPS", "gpu": "GPU", "http": "HTTP", "https": "HTTPS",
	"iam": "IAM", "id": "ID", "ip": "IP", "ipv4": "IPv4", "ipv6": "IPv6", "json": "JSON", "kms": "KMS",
	"sql": "SQL", "ssl": "SSL", "ssm": "SSM", "tcp": "TCP", "tls": "TLS", "ttl": "TTL", "udp": "UDP",
	"uri": "URI", "url": "URL", "vpc": "VPC",
}

// pascal turns a member name or enum value into an exported Go identifier:
// clusterArn -> ClusterARN, containerInstanceArns -> ContainerInstanceARNs,
// MANAGED_INSTANCES -> ManagedInstances, json-file -> JSONFile.
func pascal(s string) string {
	if !strings.ContainsFunc(s, unicode.IsLower) {
		s = strings.ToLower(s) // SHOUTING_CASE: words are separated by punctuation only
	}
	var b strings.Builder
	for _, w := range splitWords(s) {
		lw := strings.ToLower(w)
		if up, ok := initialisms[lw]; ok {
			b.WriteString(up)
		} else if up, ok := initialisms[strings.TrimSuffix(lw, "s")]; ok && strings.HasSuffix(lw, "s") {
			b.WriteString(up + "s") // plurals: Arns -> ARNs, Ids -> IDs
		} else {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	id := b.String()
	if id != "" && !unicode.IsLetter(rune(id[0])) {
		id = "X" + id
	}
	return id
}

// splitWords splits camelCase (keeping acronym runs: "enableECSManagedTags"
// -> enable ECS Managed Tags) and drops non-alphanumerics; digits stay with
// the word before them (ipv6, ec2).
func splitWords(s string) []string {
	var words []string
	rs := []rune(s)
	start := -1
	for i, r := range rs {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if start >= 0 {
				words = append(words, string(rs[start:i]))
			}
			start = -1
			continue
		}
		if start >= 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				words = append(words, string(rs[start:i]))
				start = i
			}
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		words = append(words, string(rs[start:]))
	}
	return words
}

// typeName is the Go name of a shape's type: the shape name unless renamed.
func (g *gen) typeName(name string) string {
	if to, ok := g.renames[name]; ok {
		return to
	}
	return goIdent(name)
}

// goIdent is a shape name as a Go identifier: kept as the model spells it
// (Cluster, AwsVpcConfiguration), so it matches the AWS documentation.
func goIdent(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r <= unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') {
			b.WriteRune(r)
		}
	}
	id := b.String()
	if id == "" || !unicode.IsLetter(rune(id[0])) {
		return "X" + id
	}
	return strings.ToUpper(id[:1]) + id[1:]
}

var (
	blockTag  = regexp.MustCompile(`(?i)</?(p|li|ul|ol|br|div|note|important|dl|dt|dd|h[1-6]|table|tr|td|th)\b[^>]*>`)
	anyTag    = regexp.MustCompile(`<[^>]*>`)
	space     = regexp.MustCompile(`\s+`)
	abbrevEnd = regexp.MustCompile(`(?i)\b(e\.g|i\.e|etc|vs|approx|no)$`)
)

const maxDoc = 150

// firstSentence reduces model documentation (HTML) to a one-line comment.
func firstSentence(doc string) string {
	s := blockTag.ReplaceAllString(doc, " ")
	s = anyTag.ReplaceAllString(s, "")
	s = strings.TrimSpace(space.ReplaceAllString(html.UnescapeString(s), " "))
	for i := 0; i < len(s); i++ {
		if s[i] == '.' && (i+1 == len(s) || s[i+1] == ' ') && !abbrevEnd.MatchString(s[:i]) {
			s = s[:i+1]
			break
		}
	}
	if r := []rune(s); len(r) > maxDoc {
		cut := string(r[:maxDoc])
		if j := strings.LastIndexByte(cut, ' '); j > maxDoc/2 {
			cut = cut[:j]
		}
		s = strings.TrimRight(cut, " ,;:") + "..."
	}
	if strings.HasPrefix(s, "go:") || strings.HasPrefix(s, "+build") {
		s = "- " + s // never emit a compiler directive
	}
	return s
}
