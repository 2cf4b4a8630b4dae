package main

import "github.com/spf13/cobra"

// addCapture registers this verb on the root command. Not built yet: registers nothing.
func addCapture(root *cobra.Command) {}
