package ecr

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/distribution/reference"
)

// Registry is Gantry's built-in registry as a container engine reaches it,
// and the ECR name it answers to. Agents use it to pull task images
// (Resolve), authenticating as RegistryUsername with their instance token.
type Registry struct {
	AccountID string // Gantry's account: the registry ID
	Region    string
	// Host is the host[:port] the engine pulls from: the control plane's
	// address as the agent reaches it.
	Host string
	// Aliases are other host[:port] names of the same registry, such as the
	// address the server advertises in repository URIs.
	Aliases []string
}

// RegistryUsername is the user name every credential of the built-in
// registry goes with, as with ECR ("docker login --username AWS").
const RegistryUsername = "AWS"

// ECRHost is the name images in Gantry's ECR are written with,
// "<account>.dkr.ecr.<region>.amazonaws.com".
func (r Registry) ECRHost() string {
	return r.AccountID + ".dkr.ecr." + r.Region + ".amazonaws.com"
}

// Resolve returns the reference to pull for a task's image. An image in
// Gantry's ECR, "<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag][@digest]"
// with Gantry's account and region, or one naming Host or an alias, becomes
// "<Host>/<repo>[:tag][@digest]" and builtin is true: pull it with the
// registry's credentials. Anything else, including a malformed reference,
// comes back unchanged with builtin false. Resolve is pure: it never looks
// anything up.
func (r Registry) Resolve(image string) (ref string, builtin bool) {
	host, rest, ok := strings.Cut(image, "/")
	if !ok || r.Host == "" || !r.names(host) {
		return image, false
	}
	ref = r.Host + "/" + rest
	// The engine would refuse a malformed reference anyway; leaving it
	// unchanged lets it say so in its own words.
	n, err := reference.ParseNamed(ref)
	if err != nil || reference.Domain(n) != r.Host || ValidateRepositoryName(reference.Path(n)) != nil {
		return image, false
	}
	return ref, true
}

// names reports whether host names this registry. Host names compare
// without regard to case, as DNS does.
func (r Registry) names(host string) bool {
	if r.AccountID != "" && r.Region != "" && strings.EqualFold(host, r.ECRHost()) {
		return true
	}
	if strings.EqualFold(host, r.Host) {
		return true
	}
	for _, a := range r.Aliases {
		if a != "" && strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

// RegistryFor returns the Registry an agent pulls from: Host is the
// host:port of the control plane URL the agent talks to, and the account
// and region come from its container instance ARN
// ("arn:aws:ecs:<region>:<account>:container-instance/...").
func RegistryFor(serverURL, containerInstanceARN string) (Registry, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return Registry{}, fmt.Errorf("registry: server URL %q is not an http(s) URL", serverURL)
	}
	host := u.Host
	if u.Port() == "" && u.Scheme == "http" {
		// Engines take a port-less registry host to mean HTTPS on 443.
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	parts := strings.SplitN(containerInstanceARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ecs" || parts[3] == "" || parts[4] == "" {
		return Registry{}, fmt.Errorf("registry: %q is not a container instance ARN", containerInstanceARN)
	}
	return Registry{AccountID: parts[4], Region: parts[3], Host: host}, nil
}
