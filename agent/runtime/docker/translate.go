package docker

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/gantry-dev/gantry/agent/runtime"
)

// Policy is what the host's operator allows containers to do, beyond what a
// spec can ask for by itself.
type Policy struct {
	AllowPrivileged bool // without it, a Privileged spec is ErrUnsupported
}

// EngineConfig is a ContainerSpec in the Engine API's terms: the arguments of
// ContainerCreate.
type EngineConfig struct {
	Name    string
	Config  *container.Config
	Host    *container.HostConfig
	Network *network.NetworkingConfig
}

// The engine refuses memory limits below 6 MiB (daemon linuxMinMemory).
const minMemory = 6 << 20

// Translate turns spec into the Engine API's container configuration, for API
// 1.41 and later. It is pure: it validates and maps, and talks to no engine.
// Errors are *runtime.SpecError (ErrInvalidSpec, ErrUnsupported).
func Translate(spec runtime.ContainerSpec, policy Policy) (EngineConfig, error) {
	if err := spec.Validate(); err != nil {
		return EngineConfig{}, err
	}
	switch {
	case spec.Privileged && !policy.AllowPrivileged:
		return EngineConfig{}, runtime.Unsupported("Privileged", "this host does not allow privileged containers")
	case spec.MemoryLimit > 0 && spec.MemoryLimit < minMemory:
		return EngineConfig{}, runtime.Invalid("MemoryLimit", "%d bytes is below Docker's minimum of 6 MiB", spec.MemoryLimit)
	case spec.MemoryReservation > 0 && spec.MemoryReservation < minMemory:
		return EngineConfig{}, runtime.Invalid("MemoryReservation", "%d bytes is below Docker's minimum of 6 MiB", spec.MemoryReservation)
	}
	hc, err := healthConfig(spec.HealthCheck)
	if err != nil {
		return EngineConfig{}, err
	}

	mode := spec.NetworkMode
	if mode == "" {
		mode = runtime.NetworkBridge
	}
	cfg := &container.Config{
		Image:       spec.Image,
		Entrypoint:  slices.Clone(spec.Entrypoint),
		Cmd:         slices.Clone(spec.Command),
		Env:         env(spec.Env),
		Labels:      maps.Clone(spec.Labels),
		WorkingDir:  spec.WorkingDir,
		User:        spec.User,
		Hostname:    spec.Hostname,
		Healthcheck: hc,
	}
	if spec.StopTimeout > 0 {
		s := seconds(spec.StopTimeout)
		cfg.StopTimeout = &s
	}
	host := &container.HostConfig{
		NetworkMode:    container.NetworkMode(mode),
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled}, // the agent restarts, not the engine
		LogConfig:      container.LogConfig{Type: spec.LogConfig.Driver, Config: maps.Clone(spec.LogConfig.Options)},
		DNS:            slices.Clone(spec.DNS),
		DNSSearch:      slices.Clone(spec.DNSSearch),
		CapAdd:         slices.Clone(spec.CapAdd),
		CapDrop:        slices.Clone(spec.CapDrop),
		Privileged:     spec.Privileged,
		ReadonlyRootfs: spec.ReadonlyRootfs,
		Init:           &spec.Init, // explicit, so a daemon-wide default cannot change it
		PidMode:        container.PidMode(spec.PidMode),
		IpcMode:        container.IpcMode(spec.IpcMode),
		Sysctls:        maps.Clone(spec.Sysctls),
		SecurityOpt:    slices.Clone(spec.SecurityOpt),
		ShmSize:        spec.ShmSize,
		Resources: container.Resources{
			CPUShares:         spec.CPUShares,
			Memory:            spec.MemoryLimit,
			MemoryReservation: spec.MemoryReservation,
		},
	}
	for _, h := range spec.ExtraHosts {
		host.ExtraHosts = append(host.ExtraHosts, h.Hostname+":"+h.IP)
	}
	for _, l := range spec.Links {
		alias := l.Alias
		if alias == "" {
			alias = l.Container
		}
		host.Links = append(host.Links, l.Container+":"+alias)
	}
	for _, u := range spec.Ulimits {
		host.Ulimits = append(host.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, d := range spec.Devices {
		dev := container.DeviceMapping{PathOnHost: d.HostPath, PathInContainer: d.ContainerPath, CgroupPermissions: d.Permissions}
		if dev.PathInContainer == "" {
			dev.PathInContainer = d.HostPath
		}
		if dev.CgroupPermissions == "" {
			dev.CgroupPermissions = "rwm"
		}
		host.Devices = append(host.Devices, dev)
	}
	if len(spec.GPUs) > 0 {
		// As the ECS agent asks for its gpuIds (ECS Anywhere): the engine's
		// NVIDIA driver exposes exactly these GPUs.
		host.DeviceRequests = []container.DeviceRequest{{
			Driver:       "nvidia",
			DeviceIDs:    slices.Clone(spec.GPUs),
			Capabilities: [][]string{{"gpu"}},
		}}
	}
	storage(spec, host)
	ports(spec.Ports, mode, cfg, host)
	return EngineConfig{Name: spec.Name, Config: cfg, Host: host, Network: &network.NetworkingConfig{}}, nil
}

// storage maps mounts. Bind mounts go through Binds, not Mounts, because
// only Binds creates a missing host directory (as ECS does) on API 1.41;
// Mounts' CreateMountpoint needs 1.42.
func storage(spec runtime.ContainerSpec, host *container.HostConfig) {
	for _, m := range spec.Mounts {
		switch m.Type {
		case runtime.MountBind:
			b := m.Source + ":" + m.Target
			if m.ReadOnly {
				b += ":ro"
			}
			host.Binds = append(host.Binds, b)
		case runtime.MountVolume:
			host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		}
	}
	for _, v := range spec.VolumesFrom {
		s := v.Container
		if v.ReadOnly {
			s += ":ro"
		}
		host.VolumesFrom = append(host.VolumesFrom, s)
	}
	for _, t := range spec.Tmpfs {
		if host.Tmpfs == nil {
			host.Tmpfs = map[string]string{}
		}
		opts := slices.Clone(t.Options)
		if t.Size > 0 {
			opts = append(opts, "size="+strconv.FormatInt(t.Size, 10))
		}
		host.Tmpfs[t.Path] = strings.Join(opts, ",")
	}
}

// ports exposes every mapped port and publishes it in bridge mode, with an
// empty host port for a dynamic one. In host mode nothing is NATed, but the
// bindings are recorded (host port = container port) so that inspecting the
// container reports them.
func ports(pm []runtime.PortMapping, mode runtime.NetworkMode, cfg *container.Config, host *container.HostConfig) {
	for _, p := range pm {
		proto := p.Protocol
		if proto == "" {
			proto = runtime.TCP
		}
		port := nat.Port(strconv.Itoa(int(p.ContainerPort)) + "/" + string(proto))
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
			host.PortBindings = nat.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		b := nat.PortBinding{HostIP: p.HostIP}
		switch {
		case mode == runtime.NetworkHost:
			b.HostPort = strconv.Itoa(int(p.ContainerPort))
		case p.HostPort != 0:
			b.HostPort = strconv.Itoa(int(p.HostPort))
		}
		host.PortBindings[port] = append(host.PortBindings[port], b)
	}
}

func healthConfig(h *runtime.HealthCheck) (*container.HealthConfig, error) {
	if h == nil {
		return nil, nil
	}
	for name, d := range map[string]time.Duration{"Interval": h.Interval, "Timeout": h.Timeout, "StartPeriod": h.StartPeriod} {
		if d != 0 && d < container.MinimumDuration {
			return nil, runtime.Invalid("HealthCheck."+name, "%v is below Docker's minimum of %v", d, container.MinimumDuration)
		}
	}
	return &container.HealthConfig{
		Test:        slices.Clone(h.Test),
		Interval:    h.Interval,
		Timeout:     h.Timeout,
		StartPeriod: h.StartPeriod,
		Retries:     h.Retries,
	}, nil
}

// env renders the environment sorted by name, so equal specs translate equally.
func env(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// seconds rounds d up to whole seconds, the Engine API's unit for stop timeouts.
func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
