package runtime

import (
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ContainerSpec describes a container in terms any engine understands. The
// zero value of a field means the engine's or the image's default.
type ContainerSpec struct {
	Name       string            // container name, unique on the host; empty: the engine picks one
	Image      string            // reference, stored locally (see Runtime.Pull)
	Entrypoint []string          // nil: the image's
	Command    []string          // nil: the image's
	Env        map[string]string // added to the image's environment
	Labels     map[string]string // how the agent finds its containers again (Runtime.List)
	WorkingDir string            // empty: the image's
	User       string            // "user", "uid", "user:group" or "uid:gid"; empty: the image's

	NetworkMode NetworkMode   // empty: bridge
	Ports       []PortMapping // bridge: published ports; host: the ports the process binds
	Hostname    string        // empty: the engine's (the container ID's prefix in bridge mode)
	DNS         []string      // resolver IP addresses
	DNSSearch   []string      // search domains
	ExtraHosts  []HostEntry   // added to /etc/hosts
	Links       []Link        // bridge only (legacy links)

	CPUShares         int64 // relative CPU weight (Linux cgroup shares); 0: the engine's default
	MemoryLimit       int64 // hard limit in bytes; 0: none
	MemoryReservation int64 // soft limit in bytes; 0: none
	ShmSize           int64 // /dev/shm in bytes; 0: the engine's default
	Ulimits           []Ulimit

	Mounts      []Mount
	VolumesFrom []VolumesFrom
	Tmpfs       []Tmpfs
	Devices     []Device
	// GPUs are IDs of the host's NVIDIA GPUs the container may use (ECS's
	// gpuIds). The Docker runtime asks the engine's nvidia driver for them,
	// which fails on a host without the NVIDIA container toolkit.
	GPUs []string

	ReadonlyRootfs bool
	Privileged     bool     // every capability and device; a Runtime may refuse it (ErrUnsupported)
	CapAdd         []string // Linux capabilities, e.g. "NET_ADMIN" (a "CAP_" prefix is accepted); "ALL"
	CapDrop        []string
	Init           bool              // run an init process as PID 1 that reaps zombies and forwards signals
	PidMode        string            // "", "host" or "container:<id or name>"
	IpcMode        string            // "", "host", "none", "private", "shareable" or "container:<id or name>"
	Sysctls        map[string]string // namespaced kernel parameters, e.g. "net.core.somaxconn"
	// SecurityOpt are engine security options: "no-new-privileges",
	// "apparmor=PROFILE", "label=..." (SELinux). An engine without AppArmor
	// or SELinux ignores the last two: check Info.SecurityOptions first.
	SecurityOpt []string

	HealthCheck *HealthCheck  // nil: the image's HEALTHCHECK, if any
	StopTimeout time.Duration // the engine's own stop grace period (used when it stops containers itself); 0: its default
	LogConfig   LogConfig     // empty: the engine's default driver
}

// NetworkMode is how a container is networked.
type NetworkMode string

// Network modes. Anything else (awsvpc, a named network) is ErrUnsupported.
const (
	NetworkBridge NetworkMode = "bridge" // private network namespace, ports published through NAT
	NetworkHost   NetworkMode = "host"   // the host's network namespace
	NetworkNone   NetworkMode = "none"   // loopback only
)

// Protocol is a port's transport protocol.
type Protocol string

// Protocols; empty means TCP.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// PortMapping publishes a container port on the host.
type PortMapping struct {
	ContainerPort uint16
	HostPort      uint16   // 0: the engine assigns a free port (bridge), reported in ContainerStatus.Ports
	Protocol      Protocol // empty: TCP
	HostIP        string   // empty: all addresses
}

// HostEntry is a line of /etc/hosts. The Docker runtime accepts the IP
// "host-gateway", meaning the host as seen from the container.
type HostEntry struct {
	Hostname string
	IP       string
}

// Link makes another container reachable under Alias (bridge mode only).
type Link struct {
	Container string // ID or name
	Alias     string // empty: the container's name
}

// Ulimit is a resource limit (setrlimit). Name is one of core, cpu, data,
// fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime,
// sigpending or stack.
type Ulimit struct {
	Name string
	Soft int64
	Hard int64
}

// MountType says what a Mount's Source is.
type MountType string

// Mount types.
const (
	MountBind   MountType = "bind"   // Source is an absolute host path, created if missing
	MountVolume MountType = "volume" // Source is a named volume (see CreateVolume); empty: a new anonymous volume
)

// Mount places a host path or a volume at Target.
type Mount struct {
	Type     MountType
	Source   string
	Target   string // absolute path in the container
	ReadOnly bool
}

// VolumesFrom mounts every volume of another container.
type VolumesFrom struct {
	Container string // ID or name
	ReadOnly  bool
}

// Tmpfs is an in-memory filesystem mounted at Path.
type Tmpfs struct {
	Path    string   // absolute path in the container
	Size    int64    // bytes; 0: the kernel's default (half of memory)
	Options []string // mount options, e.g. "noexec", "mode=1777"
}

// Device exposes a host device to the container.
type Device struct {
	HostPath      string
	ContainerPath string // empty: HostPath
	Permissions   string // any of "r", "w", "m"; empty: "rwm"
}

// HealthCheck is a command run inside the container to judge its health.
type HealthCheck struct {
	// Test is ["CMD", executable, args...], ["CMD-SHELL", "command line"]
	// (needs a shell in the image) or ["NONE"] (disables the image's check).
	Test        []string
	Interval    time.Duration // between checks; 0: the engine's default (30s)
	Timeout     time.Duration // per check; 0: the engine's default (30s)
	StartPeriod time.Duration // failures during it do not count; 0: none
	Retries     int           // consecutive failures that make it unhealthy; 0: the engine's default (3)
}

// LogConfig chooses the log driver ("json-file", "local", "none", ...).
// Only drivers that can be read back serve Runtime.Logs.
type LogConfig struct {
	Driver  string
	Options map[string]string
}

// VolumeSpec describes a named volume.
type VolumeSpec struct {
	Name    string
	Driver  string            // empty: "local"
	Options map[string]string // driver options
	Labels  map[string]string
}

var (
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	capRE     = regexp.MustCompile(`^(?i)(CAP_)?[A-Z_]+$`)
	ulimitSet = map[string]bool{"core": true, "cpu": true, "data": true, "fsize": true, "locks": true,
		"memlock": true, "msgqueue": true, "nice": true, "nofile": true, "nproc": true, "rss": true,
		"rtprio": true, "rttime": true, "sigpending": true, "stack": true}
)

// Validate checks what every runtime requires of a spec and returns the first
// problem as a *SpecError, or nil. Runtimes call it from Create and may check
// more (engine minimums, policy).
func (s *ContainerSpec) Validate() error {
	if s.Name != "" && !nameRE.MatchString(s.Name) {
		return Invalid("Name", "%q must match %s", s.Name, nameRE)
	}
	if s.Image == "" {
		return Invalid("Image", "required")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return Invalid("Env", "name %q must be non-empty without '=' or NUL", k)
		}
	}
	for k := range s.Labels {
		if k == "" {
			return Invalid("Labels", "empty key")
		}
	}
	if err := s.validateNetwork(); err != nil {
		return err
	}
	if err := s.validateResources(); err != nil {
		return err
	}
	if err := s.validateStorage(); err != nil {
		return err
	}
	if err := s.validateSecurity(); err != nil {
		return err
	}
	if err := s.HealthCheck.validate(); err != nil {
		return err
	}
	if s.StopTimeout < 0 {
		return Invalid("StopTimeout", "must not be negative")
	}
	return nil
}

func (s *ContainerSpec) validateNetwork() error {
	switch s.NetworkMode {
	case "", NetworkBridge, NetworkHost, NetworkNone:
	default:
		return Unsupported("NetworkMode", "%q (bridge, host or none)", s.NetworkMode)
	}
	for i, p := range s.Ports {
		f := func(name string) string { return "Ports[" + strconv.Itoa(i) + "]." + name }
		if p.ContainerPort == 0 {
			return Invalid(f("ContainerPort"), "required")
		}
		if p.Protocol != "" && p.Protocol != TCP && p.Protocol != UDP {
			return Invalid(f("Protocol"), "%q (tcp or udp)", p.Protocol)
		}
		if p.HostIP != "" {
			if _, err := netip.ParseAddr(p.HostIP); err != nil {
				return Invalid(f("HostIP"), "%q is not an IP address", p.HostIP)
			}
		}
		switch s.NetworkMode {
		case NetworkNone:
			return Invalid(f("ContainerPort"), "ports need a network; NetworkMode is none")
		case NetworkHost:
			if p.HostPort != 0 && p.HostPort != p.ContainerPort {
				return Invalid(f("HostPort"), "must equal ContainerPort (or be 0) in host network mode")
			}
		}
	}
	if s.Hostname != "" && s.NetworkMode == NetworkHost {
		return Invalid("Hostname", "a container in host network mode has the host's hostname")
	}
	for i, ip := range s.DNS {
		if _, err := netip.ParseAddr(ip); err != nil {
			return Invalid("DNS["+strconv.Itoa(i)+"]", "%q is not an IP address", ip)
		}
	}
	for i, h := range s.ExtraHosts {
		if h.Hostname == "" || strings.ContainsAny(h.Hostname, ": \t") {
			return Invalid("ExtraHosts["+strconv.Itoa(i)+"].Hostname", "%q is not a hostname", h.Hostname)
		}
		if _, err := netip.ParseAddr(h.IP); err != nil && h.IP != "host-gateway" {
			return Invalid("ExtraHosts["+strconv.Itoa(i)+"].IP", "%q is not an IP address", h.IP)
		}
	}
	for i, l := range s.Links {
		if s.NetworkMode != "" && s.NetworkMode != NetworkBridge {
			return Invalid("Links", "links need bridge network mode")
		}
		if l.Container == "" || strings.Contains(l.Container+l.Alias, ":") {
			return Invalid("Links["+strconv.Itoa(i)+"]", "container %q, alias %q: container required, no ':'", l.Container, l.Alias)
		}
	}
	return nil
}

func (s *ContainerSpec) validateResources() error {
	switch {
	case s.CPUShares < 0:
		return Invalid("CPUShares", "must not be negative")
	case s.MemoryLimit < 0:
		return Invalid("MemoryLimit", "must not be negative")
	case s.MemoryReservation < 0:
		return Invalid("MemoryReservation", "must not be negative")
	case s.MemoryLimit > 0 && s.MemoryReservation > s.MemoryLimit:
		return Invalid("MemoryReservation", "%d exceeds MemoryLimit %d", s.MemoryReservation, s.MemoryLimit)
	case s.ShmSize < 0:
		return Invalid("ShmSize", "must not be negative")
	}
	for i, u := range s.Ulimits {
		f := "Ulimits[" + strconv.Itoa(i) + "]"
		if !ulimitSet[u.Name] {
			return Invalid(f+".Name", "unknown limit %q", u.Name)
		}
		if u.Soft > u.Hard {
			return Invalid(f+".Soft", "%d exceeds Hard %d", u.Soft, u.Hard)
		}
	}
	return nil
}

func (s *ContainerSpec) validateStorage() error {
	for i, m := range s.Mounts {
		f := "Mounts[" + strconv.Itoa(i) + "]"
		if !absClean(m.Target) {
			return Invalid(f+".Target", "%q must be an absolute path", m.Target)
		}
		switch m.Type {
		case MountBind:
			if !absClean(m.Source) {
				return Invalid(f+".Source", "%q must be an absolute host path", m.Source)
			}
			if strings.Contains(m.Source+m.Target, ":") {
				return Invalid(f, "paths must not contain ':'")
			}
		case MountVolume:
			if m.Source != "" && !nameRE.MatchString(m.Source) {
				return Invalid(f+".Source", "volume name %q must match %s", m.Source, nameRE)
			}
		default:
			return Unsupported(f+".Type", "%q (bind or volume)", m.Type)
		}
	}
	for i, v := range s.VolumesFrom {
		if v.Container == "" || strings.Contains(v.Container, ":") {
			return Invalid("VolumesFrom["+strconv.Itoa(i)+"].Container", "%q: required, no ':'", v.Container)
		}
	}
	for i, t := range s.Tmpfs {
		f := "Tmpfs[" + strconv.Itoa(i) + "]"
		if !absClean(t.Path) {
			return Invalid(f+".Path", "%q must be an absolute path", t.Path)
		}
		if t.Size < 0 {
			return Invalid(f+".Size", "must not be negative")
		}
		for _, o := range t.Options {
			if o == "" || strings.Contains(o, ",") {
				return Invalid(f+".Options", "%q: one option per element", o)
			}
		}
	}
	for i, d := range s.Devices {
		f := "Devices[" + strconv.Itoa(i) + "]"
		if !absClean(d.HostPath) {
			return Invalid(f+".HostPath", "%q must be an absolute path", d.HostPath)
		}
		if d.ContainerPath != "" && !absClean(d.ContainerPath) {
			return Invalid(f+".ContainerPath", "%q must be an absolute path", d.ContainerPath)
		}
		if strings.Trim(d.Permissions, "rwm") != "" {
			return Invalid(f+".Permissions", "%q (any of r, w, m)", d.Permissions)
		}
	}
	return nil
}

func (s *ContainerSpec) validateSecurity() error {
	for field, caps := range map[string][]string{"CapAdd": s.CapAdd, "CapDrop": s.CapDrop} {
		for _, c := range caps {
			if !capRE.MatchString(c) {
				return Invalid(field, "%q is not a capability name", c)
			}
		}
	}
	if err := validateNamespace("PidMode", s.PidMode, "host"); err != nil {
		return err
	}
	if err := validateNamespace("IpcMode", s.IpcMode, "host", "none", "private", "shareable"); err != nil {
		return err
	}
	for k := range s.Sysctls {
		if k == "" || strings.ContainsAny(k, "= ") {
			return Invalid("Sysctls", "%q is not a kernel parameter name", k)
		}
	}
	for i, o := range s.SecurityOpt {
		name, _, _ := strings.Cut(o, "=")
		switch name {
		case "no-new-privileges", "apparmor", "label":
		default:
			return Invalid("SecurityOpt["+strconv.Itoa(i)+"]", "%q (no-new-privileges, apparmor=PROFILE or label=VALUE)", o)
		}
	}
	return nil
}

func validateNamespace(field, mode string, allowed ...string) error {
	if mode == "" || (strings.HasPrefix(mode, "container:") && len(mode) > len("container:")) {
		return nil
	}
	for _, a := range allowed {
		if mode == a {
			return nil
		}
	}
	return Invalid(field, "%q (%s or container:<id>)", mode, strings.Join(allowed, ", "))
}

func (h *HealthCheck) validate() error {
	if h == nil {
		return nil
	}
	ok := false
	if len(h.Test) > 0 {
		switch h.Test[0] {
		case "CMD":
			ok = len(h.Test) > 1 && h.Test[1] != ""
		case "CMD-SHELL":
			ok = len(h.Test) == 2 && h.Test[1] != ""
		case "NONE":
			ok = len(h.Test) == 1
		}
	}
	switch {
	case !ok:
		return Invalid("HealthCheck.Test", "%q: want [CMD exe args...], [CMD-SHELL line] or [NONE]", h.Test)
	case h.Interval < 0 || h.Timeout < 0 || h.StartPeriod < 0:
		return Invalid("HealthCheck", "durations must not be negative")
	case h.Retries < 0:
		return Invalid("HealthCheck.Retries", "must not be negative")
	}
	return nil
}

// Validate checks a volume spec.
func (v *VolumeSpec) Validate() error {
	if !nameRE.MatchString(v.Name) {
		return Invalid("Name", "volume name %q must match %s", v.Name, nameRE)
	}
	return nil
}

func absClean(p string) bool { return p != "" && path.IsAbs(p) && !strings.ContainsRune(p, 0) }
