package main

import (
	"fmt"
	"net"
	"os"
)

// sdNotifier tells systemd about seance's state over the socket systemd
// names in NOTIFY_SOCKET, for the unit's Type=notify (sd_notify(3)): one
// datagram of newline-separated KEY=VALUE assignments per change. A nil
// sdNotifier (no NOTIFY_SOCKET: not started by systemd) does nothing.
type sdNotifier struct {
	addr *net.UnixAddr
}

// States sent to systemd (sd_notify(3)): READY=1 once every listener is
// bound, RELOADING=1 while a SIGHUP reload runs (READY=1 again after it),
// STOPPING=1 when shutdown begins.
const (
	sdReady     = "READY=1"
	sdReloading = "RELOADING=1"
	sdStopping  = "STOPPING=1"
)

// sdNotifierFromEnv returns the notifier for NOTIFY_SOCKET, or nil when it
// is unset, and removes the variable from the environment so that the
// processes seance starts (Chromium, ffmpeg) do not inherit it: systemd
// would take their messages for seance's own (NotifyAccess=main refuses
// them, but they have nothing to say).
func sdNotifierFromEnv() *sdNotifier {
	name := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	switch {
	case name == "":
		return nil
	case name[0] == '@':
		// An abstract socket: Go names it with a leading '@' too.
	case name[0] != '/':
		// systemd ≥ 254 may also give vsock:CID:PORT (for VMs); seance
		// runs on the host, where systemd gives a path.
		return nil
	}
	return &sdNotifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// notify sends state to systemd. It returns the error for the caller to
// log: systemd not hearing READY=1 fails the start after
// TimeoutStartSec, which says more than a failure here could.
func (n *sdNotifier) notify(state string) error {
	if n == nil {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", state, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return nil
}
