//go:build !linux

package logs

import "os"

func allocate(*os.File, int64, int64) bool { return false }
