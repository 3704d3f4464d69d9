//go:build !linux

package monitor

import "errors"

func exchange(string, string) error { return errors.New("no RENAME_EXCHANGE") }
