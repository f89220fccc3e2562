package server

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry/ecr"
)

// awsFront routes AWS JSON 1.1 calls on "POST /" by the service prefix of
// their X-Amz-Target: ECR's to the ECR API, everything else (ECS's, unknown
// targets, other paths) to the ECS API, which has always answered them.
// Each API authenticates its own calls, for its own SigV4 service name.
type awsFront struct{ ecs, ecr http.Handler }

func (f awsFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if prefix, _, _ := strings.Cut(r.Header.Get("X-Amz-Target"), "."); prefix == ecr.TargetPrefix {
		f.ecr.ServeHTTP(w, r)
		return
	}
	f.ecs.ServeHTTP(w, r)
}

// RegistryHost is the registry's advertised host:port, the first part of
// every repository URI (docker login, push and pull use it).
func (s *Server) RegistryHost() string { return s.registryHost }

// registryRoot is where the default filesystem storage keeps images.
func (s *Server) registryRoot() string {
	if s.cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(s.cfg.DataDir, "registry")
}

// advertisedHost is the configured advertise address, completed with the
// listen port, or the listen address itself with loopback standing in for
// an unspecified host (0.0.0.0, ::).
func advertisedHost(advertise, listen string) string {
	_, port, _ := net.SplitHostPort(listen)
	if advertise != "" {
		if _, _, err := net.SplitHostPort(advertise); err == nil {
			return advertise
		}
		return net.JoinHostPort(strings.Trim(advertise, "[]"), port)
	}
	host, _, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// validAdvertiseAddress accepts host or host:port, where host is a DNS name
// or an IP address (IPv6 in brackets with a port).
func validAdvertiseAddress(a string) error {
	if a == "" {
		return nil
	}
	host := a
	if h, p, err := net.SplitHostPort(a); err == nil {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return fmt.Errorf("advertise address %q: bad port", a)
		}
		host = h
	}
	host = strings.Trim(host, "[]")
	if net.ParseIP(host) != nil {
		return nil
	}
	if host == "" || strings.ContainsAny(host, "/:@?# ") {
		return fmt.Errorf("advertise address %q must be host or host:port, without a scheme or path", a)
	}
	return nil
}
