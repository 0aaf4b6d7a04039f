package webrtc

import "github.com/pion/logging"

// quietLoggers is pion's logger factory: pion logs nothing of ours (the
// server logs what matters itself). Unlike pion's default factory with
// logging disabled, it hands every scope the same logger, so that a
// PeerConnection does not build a dozen log.Loggers of its own.
type quietLoggers struct{}

func (quietLoggers) NewLogger(string) logging.LeveledLogger { return quietLogger{} }

type quietLogger struct{}

func (quietLogger) Trace(string)          {}
func (quietLogger) Tracef(string, ...any) {}
func (quietLogger) Debug(string)          {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Info(string)           {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warn(string)           {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Error(string)          {}
func (quietLogger) Errorf(string, ...any) {}
