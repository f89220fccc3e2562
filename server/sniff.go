package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// sniffListener serves TLS and plain HTTP on one port: a connection whose
// first byte opens a TLS handshake record (0x16) is served over TLS, any
// other as plain HTTP. With a certificate configured, container engines on
// other hosts reach the registry over TLS (Docker speaks plain HTTP only to
// 127.0.0.0/8 and registries it was told are insecure) while the API, the
// agents and local engines keep the URLs they already use.
//
// The first byte is read on a goroutine per connection, under a deadline,
// so a client that connects and says nothing never holds up Accept.
type sniffListener struct {
	net.Listener
	tls   *tls.Config
	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
}

// sniffTimeout bounds how long a new connection may stay silent.
const sniffTimeout = 10 * time.Second

func newSniffListener(ln net.Listener, cfg *tls.Config) *sniffListener {
	l := &sniffListener{Listener: ln, tls: cfg, conns: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *sniffListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case l.errc <- err:
			case <-l.done:
			}
			return
		}
		go l.sniff(c)
	}
}

func (l *sniffListener) sniff(c net.Conn) {
	var b [1]byte
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	var out net.Conn = &prefixConn{Conn: c, first: b[0], pending: true}
	if b[0] == 0x16 {
		out = tls.Server(out, l.tls)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		out.Close()
	}
}

// Accept returns the next sniffed connection: a *tls.Conn for TLS clients,
// so net/http runs the handshake and sets Request.TLS.
func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *sniffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// prefixConn gives back the byte sniffing consumed before reading on.
type prefixConn struct {
	net.Conn
	first   byte
	pending bool
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.pending && len(p) > 0 {
		p[0], c.pending = c.first, false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// loadTLS reads a certificate and key for the listener. HTTP/1.1 only: the
// connections are served by http.Server.Serve, which does not set up HTTP/2.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}, nil
}
