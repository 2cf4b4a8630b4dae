package main

import "github.com/spf13/cobra"

// addProxy registers this verb on the root command. Not built yet: registers nothing.
func addProxy(root *cobra.Command) {}
