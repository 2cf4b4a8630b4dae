// Command reprise records real HTTP traffic with its sessions and token
// lineage, and replays it against staging at 1x-10x while keeping every
// session's order. This package only turns flags into options and calls the
// libraries in capture/, session/ and replay/.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes the CLI and returns the process exit code. Tests call it
// directly.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "reprise: %v\n", err)
	}
	return exitCode(err)
}
