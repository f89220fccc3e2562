package agent

import (
	"cmp"
	"fmt"
	"path"
	"strconv"

	"github.com/gantry-dev/gantry/agent/runtime"
	"github.com/gantry-dev/gantry/ecs"
)

// taskVolume is what a task definition volume becomes on this host: a
// host path to bind, or a Docker volume.
type taskVolume struct {
	bind   string      // absolute host path (host.sourcePath)
	docker string      // Docker volume name
	plan   *VolumePlan // the Docker volume the agent provisions
}

// translateVolumes maps the task's volumes, as the ECS agent does:
//   - host.sourcePath: a bind mount of that host path (created if missing);
//   - dockerVolumeConfiguration scope shared: the Docker volume of that
//     name, created if missing only with autoprovision;
//   - dockerVolumeConfiguration scope task (the default), host without a
//     sourcePath, or no configuration at all: a Docker volume of the task's
//     own, ecs-<family>-<revision>-<volume>-<task id>, removed with the
//     task's containers.
//
// EFS, FSx, S3 Files and volumes configured at launch are refused: this host
// cannot provide them, and a container writing to its own layer instead
// would lose the data.
func (tc *taskContext) translateVolumes() (map[string]taskVolume, error) {
	out := make(map[string]taskVolume, len(tc.td.Volumes))
	for i := range tc.td.Volumes {
		v := &tc.td.Volumes[i]
		refuse := func(field, format string, args ...any) error {
			return &RefusedError{Field: "volumes[" + strconv.Itoa(i) + "]" + field, Reason: fmt.Sprintf(format, args...)}
		}
		switch {
		case v.Name == "":
			return nil, refuse(".name", "required")
		case v.EFSVolumeConfiguration != nil:
			return nil, refuse(".efsVolumeConfiguration", "Amazon EFS volumes are not available on this host")
		case v.FsxWindowsFileServerVolumeConfiguration != nil:
			return nil, refuse(".fsxWindowsFileServerVolumeConfiguration", "FSx for Windows File Server volumes are for Windows containers")
		case v.S3filesVolumeConfiguration != nil:
			return nil, refuse(".s3filesVolumeConfiguration", "S3 Files volumes are not available on this host")
		case isTrue(v.ConfiguredAtLaunch):
			return nil, refuse(".configuredAtLaunch", "volumes configured at launch (Amazon EBS) are not available on this host")
		case v.Host != nil && v.Host.SourcePath != "":
			p := v.Host.SourcePath
			if !path.IsAbs(p) || path.Clean(p) != p {
				return nil, refuse(".host.sourcePath", "%q must be an absolute, clean host path", p)
			}
			out[v.Name] = taskVolume{bind: p}
		case v.DockerVolumeConfiguration != nil && v.DockerVolumeConfiguration.Scope == ecs.DockerVolumeScopeShared:
			dv := v.DockerVolumeConfiguration
			driver := cmp.Or(dv.Driver, "local")
			if driver != "local" {
				return nil, refuse(".dockerVolumeConfiguration.driver", "%q: only the local driver is supported", driver)
			}
			plan := &VolumePlan{Name: v.Name, Shared: true, Autoprovision: isTrue(dv.Autoprovision),
				Spec: runtime.VolumeSpec{Name: v.Name, Driver: driver, Options: dv.DriverOpts, Labels: dv.Labels}}
			if err := plan.Spec.Validate(); err != nil {
				return nil, refuse(".name", "%v", err)
			}
			out[v.Name] = taskVolume{docker: v.Name, plan: plan}
		default:
			var dv ecs.DockerVolumeConfiguration
			if v.DockerVolumeConfiguration != nil {
				dv = *v.DockerVolumeConfiguration
			}
			driver := cmp.Or(dv.Driver, "local")
			if driver != "local" {
				return nil, refuse(".dockerVolumeConfiguration.driver", "%q: only the local driver is supported", driver)
			}
			if isTrue(dv.Autoprovision) {
				return nil, refuse(".dockerVolumeConfiguration.autoprovision", "only volumes of scope shared are autoprovisioned")
			}
			name := "ecs-" + tc.td.Family + "-" + strconv.Itoa(int(tc.td.Revision)) + "-" + v.Name + "-" + tc.taskID
			labels := tc.baseLabels(dv.Labels)
			labels[LabelVolumeScope] = "task"
			plan := &VolumePlan{Name: v.Name, Spec: runtime.VolumeSpec{Name: name, Driver: driver, Options: dv.DriverOpts, Labels: labels}}
			if err := plan.Spec.Validate(); err != nil {
				return nil, refuse(".name", "%v", err)
			}
			out[v.Name] = taskVolume{docker: name, plan: plan}
		}
	}
	return out, nil
}

// storage maps mountPoints and volumesFrom.
func (tc *taskContext) storage(cd *ecs.ContainerDefinition, spec *runtime.ContainerSpec) error {
	for i, mp := range cd.MountPoints {
		field := "mountPoints[" + strconv.Itoa(i) + "]"
		v, ok := tc.volumes[mp.SourceVolume]
		if !ok {
			return &RefusedError{Container: cd.Name, Field: field + ".sourceVolume", Reason: fmt.Sprintf("%q names no volume of the task definition", mp.SourceVolume)}
		}
		if mp.ContainerPath == "" {
			return &RefusedError{Container: cd.Name, Field: field + ".containerPath", Reason: "required"}
		}
		m := runtime.Mount{Type: runtime.MountVolume, Source: v.docker, Target: mp.ContainerPath, ReadOnly: isTrue(mp.ReadOnly)}
		if v.bind != "" {
			m.Type, m.Source = runtime.MountBind, v.bind
		}
		spec.Mounts = append(spec.Mounts, m)
	}
	for i, vf := range cd.VolumesFrom {
		if findContainer(tc.td, vf.SourceContainer) == nil || vf.SourceContainer == cd.Name {
			return &RefusedError{Container: cd.Name, Field: "volumesFrom[" + strconv.Itoa(i) + "].sourceContainer",
				Reason: fmt.Sprintf("%q names no other container of the task", vf.SourceContainer)}
		}
		spec.VolumesFrom = append(spec.VolumesFrom, runtime.VolumesFrom{Container: tc.containerName(vf.SourceContainer), ReadOnly: isTrue(vf.ReadOnly)})
	}
	return nil
}
