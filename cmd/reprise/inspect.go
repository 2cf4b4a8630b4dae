package main

import "github.com/spf13/cobra"

// addInspect registers this verb on the root command. Not built yet: registers nothing.
func addInspect(root *cobra.Command) {}
