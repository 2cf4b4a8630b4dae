//go:build !unix

package replay

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }

// pidCPU is not measured here.
func pidCPU(int) time.Duration { return 0 }
