package main

import "github.com/spf13/cobra"

// addReplay registers this verb on the root command. Not built yet: registers nothing.
func addReplay(root *cobra.Command) {}
