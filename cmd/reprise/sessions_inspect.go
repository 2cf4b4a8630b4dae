package main

import "github.com/spf13/cobra"

// addSessionsInspect registers this verb on the root command. Not built yet: registers nothing.
func addSessionsInspect(root *cobra.Command) {}
