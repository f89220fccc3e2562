package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// identityFile is where the agent keeps who it is, in its data dir.
const identityFile = "identity.json"

// identity is the container instance this agent registered as. Reusing it
// on restart keeps the instance's ARN, its attributes and its tasks.
type identity struct {
	ContainerInstanceARN string `json:"containerInstanceArn"`
	InstanceToken        string `json:"instanceToken"` // a secret: the file is 0600
	Cluster              string `json:"cluster"`       // as configured (--cluster)
	Server               string `json:"server"`        // informational
}

// loadIdentity reads dir's identity; a missing file is the zero identity.
func loadIdentity(dir string) (identity, error) {
	var id identity
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return id, nil
	}
	if err != nil {
		return id, err
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return identity{}, fmt.Errorf("%s: %w", filepath.Join(dir, identityFile), err)
	}
	return id, nil
}

// save writes the identity atomically (a crash leaves the old file or the
// new one, never half of one), readable only by its owner.
func (id identity) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, identityFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, identityFile))
}
