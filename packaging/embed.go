// Package packaging holds the Debian package of seance — nfpm.yaml, the
// systemd unit, the maintainer scripts — and gives `seance init` the
// configuration and env file the package installs as a starting point,
// so that it replaces them while they are untouched and never an
// operator's own.
package packaging

import _ "embed" // the starting point files

// StartingConfig is /etc/seance/seance.yaml as the package installs it.
//
//go:embed seance.yaml
var StartingConfig []byte

// StartingEnv is /etc/seance/seance.env as the package installs it.
//
//go:embed seance.env
var StartingEnv []byte
