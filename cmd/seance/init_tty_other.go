//go:build !linux

package main

import "os"

// stdinIsTerminal reports whether stdin is a character device (seance
// runs on Linux; elsewhere this is close enough).
func stdinIsTerminal() bool {
	fi, err := os.Stdin.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
