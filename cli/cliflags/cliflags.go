// Package cliflags holds what every gantry command's flag handling shares.
// It imports nothing of Gantry, so the agent's small binary can use it.
package cliflags

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultDataDir follows the XDG base directory convention.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "gantry")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "gantry")
	}
	return "gantry-data"
}

// Parse parses args into fs, reporting errors the way flag does, and rejects
// stray positional arguments.
func Parse(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gantry %s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return false
	}
	return true
}
