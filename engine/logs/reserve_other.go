//go:build !linux

package logs

import (
	"errors"
	"os"
)

func allocate(*os.File, int64, int64) (bool, error) {
	return false, errors.New("no fallocate")
}
