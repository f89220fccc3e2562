// Command profsum splits a bench/api CPU profile into client and server
// costs. The SDK client and the Gantry server share one process, so each
// sample is attributed by its call stack: net/http.(*conn).serve and Gantry's
// packages are the server; the SDK's frames, the benchmark's workers and
// net/http's client connection loops are the client; etcd's own goroutines
// and the runtime's are listed apart. The first matching rule wins.
//
//	go run ./bench/api/profsum /tmp/api.prof
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strings"
	"time"
)

type rule struct {
	name string
	all  []string // every one of these appears in the stack
	any  []string // and, if set, at least one of these
}

// Stacks are cut at 64 frames and the SDK's middleware chain is deeper than
// that, so client samples are recognised by SDK frames as well as by the
// benchmark's own; server rules come first because the server's SigV4
// verifier calls the SDK signer too.
var (
	server = []string{"net/http.(*conn).serve", "github.com/gantry-dev/gantry/"}
	client = []string{"main.measure", "github.com/aws/aws-sdk-go-v2/", "github.com/aws/smithy-go/"}
)

var rules = []rule{
	{"server: SigV4 verify", []string{"internal/sigv4."}, server},
	{"server: decode request JSON", []string{"awsproto.Decode"}, server},
	{"server: encode response JSON", []string{"awsproto.WriteJSON"}, server},
	{"server: GetCluster etcd Get", []string{"GetCluster", "go.etcd.io/"}, server},
	{"server: GetCluster JSON decode", []string{"GetCluster"}, server},
	{"server: CountCluster (2 etcd counts)", []string{"CountCluster"}, server},
	{"server: request ID", []string{"NewRequestID"}, server},
	{"server: other ecsapi", []string{"gantry/ecsapi."}, server},
	{"server: net/http (read request, write response)", nil, server},
	{"client: serialize request JSON", []string{"awsjson.(*Protocol).SerializeRequest"}, client},
	{"client: deserialize response JSON", []string{"awsjson.(*Protocol).DeserializeResponse"}, client},
	{"client: net/http round trip", []string{"transport/http.ClientHandler.Handle"}, client},
	{"client: SigV4 signing and payload hash", []string{"signer/v4."}, []string{"v4.Signer.SignHTTP", "sha256"}},
	{"client: other SDK middleware", nil, client},
	{"client: net/http conn read/write loops", []string{"net/http.(*persistConn)"}, nil},
	{"etcd: server goroutines (raft, read index, apply)", []string{"go.etcd.io/"}, nil},
	{"runtime: GC workers", []string{"runtime.gcBgMarkWorker"}, nil},
	{"runtime: other (scheduler, netpoll, sweeping)", nil, nil},
}

// Cross-cutting costs, counted in whichever row they fall in.
var across = []rule{
	{"memory allocation (mallocgc)", []string{"runtime.mallocgc"}, nil},
	{"GC assists in goroutines", []string{"runtime.gcAssistAlloc"}, nil},
	{"syscalls (read/write/epoll)", []string{"internal/runtime/syscall"}, nil},
}

func main() {
	log.SetFlags(0)
	if len(os.Args) != 2 {
		log.Fatal("usage: profsum PROFILE")
	}
	out, err := exec.Command("go", "tool", "pprof", "-traces", os.Args[1]).Output()
	if err != nil {
		log.Fatalf("go tool pprof: %v", err)
	}
	byRule := make([]time.Duration, len(rules))
	byAcross := make([]time.Duration, len(across))
	var total time.Duration
	for _, s := range samples(out) {
		total += s.value
		for i, r := range rules {
			if r.matches(s.stack) {
				byRule[i] += s.value
				break
			}
		}
		for i, r := range across {
			if r.matches(s.stack) {
				byAcross[i] += s.value
			}
		}
	}
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / total.Seconds() }
	fmt.Printf("%d ms of samples\n\n| where | CPU %% |\n|---|---:|\n", total.Milliseconds())
	side := map[string]time.Duration{}
	for i, r := range rules {
		fmt.Printf("| %s | %.1f |\n", r.name, pct(byRule[i]))
		side[strings.SplitN(r.name, ":", 2)[0]] += byRule[i]
	}
	fmt.Println()
	for _, k := range []string{"server", "client", "etcd", "runtime"} {
		fmt.Printf("| total %s | %.1f |\n", k, pct(side[k]))
	}
	for i, r := range across {
		fmt.Printf("| across rows: %s | %.1f |\n", r.name, pct(byAcross[i]))
	}
}

func (r rule) matches(stack string) bool {
	for _, s := range r.all {
		if !strings.Contains(stack, s) {
			return false
		}
	}
	for _, s := range r.any {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return len(r.any) == 0
}

type sample struct {
	value time.Duration
	stack string // frames, one per line
}

// samples parses `pprof -traces`: blocks split by "-----------+----" lines,
// the first line of each "<value>   <leaf frame>", then one frame a line.
func samples(out []byte) []sample {
	var ss []sample
	var cur *sample
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-----------+"):
			ss = append(ss, sample{})
			cur = &ss[len(ss)-1]
		case cur == nil:
			// header
		case cur.stack == "" && strings.TrimSpace(line) != "":
			f := strings.Fields(line)
			d, err := time.ParseDuration(f[0])
			if err != nil {
				log.Fatalf("sample value %q: %v", f[0], err)
			}
			cur.value = d
			cur.stack = strings.Join(f[1:], " ") + "\n"
		default:
			cur.stack += strings.TrimSpace(line) + "\n"
		}
	}
	return ss
}
