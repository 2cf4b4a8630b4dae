//go:build windows

package guard

import "os/exec"

// killGroup keeps exec's default on Windows: the process is killed on
// cancel, and WaitDelay bounds the wait for its children's output.
func killGroup(cmd *exec.Cmd) {}
