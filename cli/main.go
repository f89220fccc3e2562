// Package cli implements the gantry command's subcommands, one file each.
package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/gantry-dev/gantry/cli/agentcmd"
)

// Version is set at build time with -ldflags "-X github.com/gantry-dev/gantry/cli.Version=...".
var Version = "0.1.0-dev"

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"dev", "run everything on this machine (embedded etcd + control plane)", runDev},
		{"server", "run the control plane (embedded or external etcd)", runServer},
		{"agent", "run a node agent: join a cluster and run its tasks in Docker", runAgent},
		{"logs", "print a task's container output (gantry logs TASK [--container NAME] [--follow])", runLogs},
		{"version", "print the version", runVersion},
	}
}

// Main runs the gantry command line and returns the process exit code.
func Main(args []string) int { return run(args, os.Stdout, os.Stderr) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "gantry: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: gantry <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'gantry <command> -h' for a command's flags.")
}

// runAgent is `gantry agent`; cmd/gantry-agent runs the same command alone.
func runAgent(args []string, stdout, stderr io.Writer) int {
	return agentcmd.Run(args, stdout, stderr, Version)
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "gantry %s\n", Version)
	return 0
}
