package ecs

// validateVolumes checks the task's volumes and indexes them by name for
// the mountPoints rule. Volume names follow the container name rule ("Up to
// 255 letters (uppercase and lowercase), numbers, underscores, and hyphens",
// API reference, Volume.name) and are unique; a volume has at most one kind
// of configuration; EFS's cross-member rules are those of the API reference
// (EFSVolumeConfiguration, EFSAuthorizationConfig).
func (c *taskCheck) validateVolumes() error {
	atLaunch := 0
	for i := range c.td.Volumes {
		v := &c.td.Volumes[i]
		if v.Name == "" {
			return ClientError("Volume.name should not be null or empty.")
		}
		if !validName(v.Name, 255) {
			return ClientError("Volume.name contains invalid characters.")
		}
		if c.volumes[v.Name] != nil {
			return ClientError("Volume names must be unique within a Task Definition.")
		}
		c.volumes[v.Name] = v
		kinds := 0
		for _, set := range []bool{v.Host != nil, v.DockerVolumeConfiguration != nil, v.EFSVolumeConfiguration != nil,
			v.FsxWindowsFileServerVolumeConfiguration != nil, v.S3filesVolumeConfiguration != nil} {
			if set {
				kinds++
			}
		}
		if kinds > 1 {
			return ClientError("Volume '%s' can specify only one of host, dockerVolumeConfiguration, efsVolumeConfiguration, fsxWindowsFileServerVolumeConfiguration and s3filesVolumeConfiguration.", v.Name)
		}
		if v.ConfiguredAtLaunch != nil && *v.ConfiguredAtLaunch {
			if atLaunch++; atLaunch > 1 {
				return ClientError("Only one volume in a task definition can be configured at launch.")
			}
		}
		if err := validateEFS(v); err != nil {
			return err
		}
	}
	return nil
}

func validateEFS(v *Volume) error {
	e := v.EFSVolumeConfiguration
	if e == nil {
		return nil
	}
	encrypted := e.TransitEncryption == EFSTransitEncryptionEnabled
	if e.TransitEncryptionPort != nil && !encrypted {
		return ClientError("Volume '%s': transitEncryptionPort requires transitEncryption to be ENABLED.", v.Name)
	}
	if e.TransitEncryptionPort != nil && (*e.TransitEncryptionPort < 1 || *e.TransitEncryptionPort > 65535) {
		return ClientError("Volume '%s': invalid transitEncryptionPort.", v.Name)
	}
	if a := e.AuthorizationConfig; a != nil {
		if a.IAM == EFSAuthorizationConfigIAMEnabled && !encrypted {
			return ClientError("Volume '%s': transit encryption must be ENABLED when EFS IAM authorization is used.", v.Name)
		}
		if a.AccessPointID != "" {
			if !encrypted {
				return ClientError("Volume '%s': transit encryption must be ENABLED when an EFS access point is used.", v.Name)
			}
			if e.RootDirectory != "" && e.RootDirectory != "/" {
				return ClientError("Volume '%s': rootDirectory must be omitted or set to / when an EFS access point is used.", v.Name)
			}
		}
	}
	return nil
}
