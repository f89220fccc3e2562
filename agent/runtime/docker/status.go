package docker

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/go-connections/nat"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// This file holds the pure conversions from the engine's answers to runtime
// values, the way back of translate.go.

// status converts a container inspection.
func status(c container.InspectResponse) runtime.ContainerStatus {
	s := runtime.ContainerStatus{}
	if c.ContainerJSONBase == nil {
		return s
	}
	s.ID = c.ID
	s.Name = strings.TrimPrefix(c.Name, "/")
	s.ImageID = c.Image
	s.CreatedAt = parseTime(c.Created)
	if c.Config != nil {
		s.Image = c.Config.Image
		s.Labels = maps.Clone(c.Config.Labels)
	}
	if st := c.State; st != nil {
		switch st.Status {
		case container.StateCreated:
			s.State = runtime.StateCreated
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			s.State = runtime.StateRunning
		default: // exited, removing, dead
			s.State = runtime.StateExited
		}
		s.ExitCode = st.ExitCode
		s.OOMKilled = st.OOMKilled
		s.Error = st.Error
		s.StartedAt = parseTime(st.StartedAt)
		if s.State == runtime.StateExited {
			s.FinishedAt = parseTime(st.FinishedAt)
		}
		if h := st.Health; h != nil {
			s.Health = health(h.Status)
			if n := len(h.Log); n > 0 && h.Log[n-1] != nil {
				s.HealthOutput = strings.TrimSpace(h.Log[n-1].Output)
			}
		}
	}
	if c.HostConfig != nil && c.HostConfig.NetworkMode.IsHost() {
		s.Ports = bindings(c.HostConfig.PortBindings)
	} else if c.NetworkSettings != nil {
		s.Ports = bindings(c.NetworkSettings.Ports)
	}
	if c.NetworkSettings != nil {
		for _, name := range slices.Sorted(maps.Keys(c.NetworkSettings.Networks)) {
			ep := c.NetworkSettings.Networks[name]
			if ep == nil {
				continue
			}
			s.Networks = append(s.Networks, runtime.NetworkAddress{Network: name, IPv4: ep.IPAddress, IPv6: ep.GlobalIPv6Address})
		}
	}
	return s
}

// bindings flattens a port map, skipping ports that are exposed but not
// published (yet: a created container has no host ports).
func bindings(pm nat.PortMap) []runtime.PortBinding {
	var out []runtime.PortBinding
	for port, bs := range pm {
		for _, b := range bs {
			hp, err := strconv.ParseUint(b.HostPort, 10, 16)
			if err != nil || hp == 0 {
				continue
			}
			ip := b.HostIP
			if ip == "" {
				ip = "0.0.0.0"
			}
			out = append(out, runtime.PortBinding{
				ContainerPort: uint16(port.Int()),
				HostPort:      uint16(hp),
				Protocol:      runtime.Protocol(port.Proto()),
				HostIP:        ip,
			})
		}
	}
	slices.SortFunc(out, func(a, b runtime.PortBinding) int {
		return cmp.Or(cmp.Compare(a.ContainerPort, b.ContainerPort), cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(a.HostIP, b.HostIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	return out
}

func health(s container.HealthStatus) runtime.HealthStatus {
	switch s {
	case container.Starting:
		return runtime.HealthStarting
	case container.Healthy:
		return runtime.HealthHealthy
	case container.Unhealthy:
		return runtime.HealthUnhealthy
	}
	return runtime.HealthNone
}

// eventActions are the container actions Events subscribes to.
var eventActions = []events.Action{events.ActionStart, events.ActionDie, events.ActionOOM, events.ActionHealthStatus, events.ActionDestroy}

// event converts an engine event; ok is false for events runtime does not
// report.
func event(m events.Message) (e runtime.Event, ok bool) {
	if m.Type != events.ContainerEventType {
		return e, false
	}
	e = runtime.Event{ContainerID: m.Actor.ID, Time: time.Unix(0, m.TimeNano)}
	action, detail, _ := strings.Cut(string(m.Action), ": ")
	switch events.Action(action) {
	case events.ActionStart:
		e.Type = runtime.EventStart
	case events.ActionDie:
		e.Type = runtime.EventDie
		e.ExitCode, _ = strconv.Atoi(m.Actor.Attributes["exitCode"])
	case events.ActionOOM:
		e.Type = runtime.EventOOM
	case events.ActionHealthStatus:
		e.Type = runtime.EventHealth
		e.Health = health(container.HealthStatus(strings.TrimSpace(detail)))
	case events.ActionDestroy:
		e.Type = runtime.EventDestroy
	default:
		return e, false
	}
	// The engine mixes the container's labels with its own attributes.
	e.Labels = maps.Clone(m.Actor.Attributes)
	for _, k := range []string{"image", "name", "exitCode", "execDuration"} {
		delete(e.Labels, k)
	}
	return e, true
}

// info converts the engine's system information.
func info(i system.Info, apiVersion string) runtime.Info {
	return runtime.Info{
		Runtime:       "docker",
		EngineVersion: i.ServerVersion,
		APIVersion:    apiVersion,
		OS:            i.OSType,
		Arch:          goArch(i.Architecture),
		KernelVersion: i.KernelVersion,
		OSImage:       i.OperatingSystem,
		Hostname:      i.Name,
		CPUs:          i.NCPU,
		MemoryBytes:   i.MemTotal,
		LogDrivers:    slices.Clone(i.Plugins.Log),

		SecurityOptions: slices.Clone(i.SecurityOptions),
	}
}

// bridgeGateway is the gateway of the default bridge network: the one
// configured, else the first address of its subnet, which Docker gives
// docker0 unless told otherwise (--bip).
func bridgeGateway(n network.Inspect) string {
	for _, c := range n.IPAM.Config {
		if c.Gateway != "" {
			return c.Gateway
		}
	}
	for _, c := range n.IPAM.Config {
		p, err := netip.ParsePrefix(c.Subnet)
		if err == nil && p.Addr().Is4() {
			return p.Masked().Addr().Next().String()
		}
	}
	return ""
}

// goArch maps uname -m names, which the engine reports, to Go's.
func goArch(uname string) string {
	switch uname {
	case "x86_64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "i386", "i686":
		return "386"
	case "armv7l", "armv6l":
		return "arm"
	}
	return uname
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// repoDigest picks, from an image's RepoDigests ("name@sha256:..."), the
// digest of ref's repository: an image pulled from or pushed to several
// repositories has one per repository, and the digests may differ between
// them. Empty when the image has none for it (built locally).
func repoDigest(ref reference.Named, repoDigests []string) string {
	for _, rd := range repoDigests {
		d, err := reference.ParseNormalizedNamed(rd)
		if err != nil {
			continue
		}
		if c, ok := d.(reference.Canonical); ok && d.Name() == ref.Name() {
			return c.Digest().String()
		}
	}
	return ""
}
