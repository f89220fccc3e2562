// Package cliflags holds what every gantry command's flag handling shares.
// It imports nothing of Gantry, so the agent's small binary can use it.
package cliflags

import (
	"errors"
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
// stray positional arguments. It returns -1 when the command should go on,
// else the exit code: 0 after -h or --help, 2 after an error.
func Parse(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gantry %s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return 2
	}
	return -1
}
