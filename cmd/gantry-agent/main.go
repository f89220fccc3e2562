// Command gantry-agent is `gantry agent` alone: the same command, in a binary
// without the control plane (etcd, the registry), whose resident memory is a
// fraction of gantry's. Deploy it on hosts that only run tasks.
package main

import (
	"os"

	"github.com/gantry-dev/gantry/cli/agentcmd"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() { os.Exit(agentcmd.Run(os.Args[1:], os.Stdout, os.Stderr, version)) }
