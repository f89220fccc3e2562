package testcluster

import (
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/docker/docker/client"
)

// EngineProxy relays connections from a Unix socket to the Docker engine
// (DOCKER_HOST, or the default socket). Cut makes the engine look gone to
// its clients (open connections break, new ones are refused), as during an
// engine restart, without touching the engine other tests share; Restore
// brings it back.
type EngineProxy struct {
	path     string // the proxy's socket
	upstream func() (net.Conn, error)

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

// StartEngineProxy starts a proxy for the test's lifetime.
func StartEngineProxy(t testing.TB) *EngineProxy {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = client.DefaultDockerHost
	}
	u, err := url.Parse(host)
	if err != nil {
		t.Fatalf("DOCKER_HOST %q: %v", host, err)
	}
	var dial func() (net.Conn, error)
	switch u.Scheme {
	case "unix":
		dial = func() (net.Conn, error) { return net.Dial("unix", u.Path) }
	case "tcp":
		if os.Getenv("DOCKER_TLS_VERIFY") != "" {
			t.Skip("the engine proxy does not speak TLS")
		}
		dial = func() (net.Conn, error) { return net.Dial("tcp", u.Host) }
	default:
		t.Skipf("the engine proxy does not support DOCKER_HOST %s", host)
	}
	// Unix socket paths are short (108 bytes): not under t.TempDir().
	dir, err := os.MkdirTemp("", "gantry-engine-")
	if err != nil {
		t.Fatal(err)
	}
	p := &EngineProxy{path: filepath.Join(dir, "docker.sock"), upstream: dial, conns: map[net.Conn]bool{}}
	p.Restore()
	t.Cleanup(func() { p.Cut(); os.RemoveAll(dir) })
	return p
}

// Client is a Docker client that talks to the engine through the proxy.
func (p *EngineProxy) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost("unix://"+p.path), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Cut breaks every open connection and refuses new ones.
func (p *EngineProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close() // also removes the socket file
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore accepts connections again.
func (p *EngineProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	os.Remove(p.path)
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		panic("engine proxy: " + err.Error())
	}
	p.ln = ln
	go p.accept(ln)
}

func (p *EngineProxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := p.upstream()
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // cut meanwhile
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *EngineProxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
