// Command gantry is an ECS-compatible container orchestrator.
package main

import (
	"os"

	"github.com/gantry-dev/gantry/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
