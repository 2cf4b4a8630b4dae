package main

import (
	"io"

	"github.com/spf13/cobra"
)

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "reprise",
		Short: "Record real HTTP traffic with its sessions, replay it safely at 1x-10x",
		Long: `Reprise records real HTTP traffic, including who each request belongs to and
when its tokens were refreshed, to compressed recordings, and replays them
against staging at 1x-10x while keeping every session's order.`,
		Example: `  # record traffic to port 8080 from a pcap, then look at it
  reprise capture --pcap traffic.pcap --port 8080 -o traffic.rpz
  reprise inspect traffic.rpz

  # replay it against staging at twice the speed
  reprise replay traffic.rpz --target http://127.0.0.1:8089 --speed 2`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Flag errors are usage errors (exit 2) and say where to look.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef(flagHint(c, err))
	})
	root.AddCommand(newVersionCmd())
	// Each verb lives in its own file and adds itself here.
	addInspect(root)
	addSessionsInspect(root)
	addCapture(root)
	addProxy(root)
	addReplay(root)
	addReport(root)
	addCheck(root)
	addShadow(root)
	addDemo(root)
	addExport(root)
	addImport(root)
	addK8s(root)
	return root
}
