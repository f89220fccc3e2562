package runtime

import "time"

// ContainerStatus is what a runtime reports about a container. It is written
// only by the runtime.
type ContainerStatus struct {
	ID      string
	Name    string // without Docker's leading "/"
	Image   string // as given in the spec
	ImageID string // content-addressed ID of the image the container runs, e.g. "sha256:..."
	Labels  map[string]string

	State      State
	ExitCode   int    // meaningful when State is StateExited
	OOMKilled  bool   // the kernel's OOM killer ended it
	Error      string // why the engine could not start it, if it could not
	CreatedAt  time.Time
	StartedAt  time.Time // zero if never started
	FinishedAt time.Time // zero unless exited

	Health       HealthStatus
	HealthOutput string // output of the last health check, if any

	// Ports are the host ports the container's ports are published on, with
	// dynamic ports resolved; in host mode each port maps to itself. An
	// engine may report one binding per address family.
	Ports    []PortBinding
	Networks []NetworkAddress
}

// State is a container's lifecycle state.
type State string

// States. Engines' transient states fold into these: paused and restarting
// are running; removing and dead are exited.
const (
	StateCreated State = "created" // created, never started
	StateRunning State = "running"
	StateExited  State = "exited" // ran, or failed to start after having been started before
)

// HealthStatus is a container's health as its health check judges it.
type HealthStatus string

// Health statuses.
const (
	HealthNone      HealthStatus = ""          // no health check
	HealthStarting  HealthStatus = "starting"  // not judged yet
	HealthHealthy   HealthStatus = "healthy"   // the last check passed
	HealthUnhealthy HealthStatus = "unhealthy" // Retries consecutive checks failed
)

// PortBinding is a published port as the engine assigned it.
type PortBinding struct {
	ContainerPort uint16
	HostPort      uint16
	Protocol      Protocol
	HostIP        string // "0.0.0.0" or "::" for all addresses
}

// NetworkAddress is a container's address on one network.
type NetworkAddress struct {
	Network string // e.g. "bridge"
	IPv4    string
	IPv6    string
}

// Event is a container lifecycle event.
type Event struct {
	Type        EventType
	ContainerID string
	Labels      map[string]string // the container's labels
	Time        time.Time
	ExitCode    int          // EventDie
	Health      HealthStatus // EventHealth
}

// EventType names a container event.
type EventType string

// Event types. An OOM kill is reported as EventOOM followed by EventDie.
const (
	EventStart   EventType = "start"
	EventDie     EventType = "die"     // the process exited, whether by itself, Stop or a kill
	EventOOM     EventType = "oom"     // the kernel's OOM killer struck
	EventHealth  EventType = "health"  // the health status changed
	EventDestroy EventType = "destroy" // the container was removed
)

// Info describes the host and its engine.
type Info struct {
	Runtime       string // "docker", "sim"
	EngineVersion string // e.g. "20.10.24"
	APIVersion    string // the engine API version in use, e.g. "1.41"
	OS            string // GOOS naming: "linux", "windows"
	Arch          string // GOARCH naming: "amd64", "arm64"
	KernelVersion string
	OSImage       string // e.g. "Debian GNU/Linux 12 (bookworm)"
	Hostname      string
	CPUs          int   // logical CPUs
	MemoryBytes   int64 // total memory
	LogDrivers    []string
	// SecurityOptions are the engine's security features, as Docker names
	// them: "name=seccomp,profile=default", "name=apparmor", "name=selinux",
	// "name=rootless", ...
	SecurityOptions []string
	// HostGateway is the host's address as containers on the default bridge
	// network see it (Docker's docker0 gateway, what "host-gateway" in
	// ExtraHosts means); empty if unknown.
	HostGateway string
}

// RegistryAuth are credentials for Pull.
type RegistryAuth struct {
	Username      string
	Password      string
	ServerAddress string // e.g. "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	IdentityToken string // OAuth refresh token, instead of a password
}

// LogOptions select a container's output.
type LogOptions struct {
	Follow     bool      // keep the reader open for new output until the container exits
	Tail       int       // only the last Tail lines; 0: all
	Since      time.Time // only output written at or after Since; zero: all
	Timestamps bool      // prefix each line with its RFC 3339 nano timestamp and a space
	// Stdout and Stderr select streams; with neither set, both.
	Stdout, Stderr bool
}
