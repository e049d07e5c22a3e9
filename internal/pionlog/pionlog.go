// Package pionlog routes Pion's logs to slog, for the hub and the Go peer.
// Pion's Info level is chatty (state changes of every connection), so it
// goes to Debug; Trace goes below Debug; routine warnings of departing
// connections go to Debug too.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// pionLogger is one scope's logger.
type pionLogger struct {
	log *slog.Logger
}

// Factory is a logging.LoggerFactory writing to Log, each scope's lines
// with the attribute pion=scope.
type Factory struct {
	Log *slog.Logger
}

// NewLogger implements logging.LoggerFactory.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.Log.With("pion", scope)}
}

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(msg string) { l.emit(slog.LevelDebug-4, msg) }
func (l pionLogger) Tracef(format string, args ...any) {
	l.emitf(slog.LevelDebug-4, format, args...)
}
func (l pionLogger) Debug(msg string) { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}
func (l pionLogger) Info(msg string) { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}
func (l pionLogger) Warn(msg string) { l.emit(Level(slog.LevelWarn, msg), msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.emit(Level(slog.LevelWarn, msg), msg)
}
func (l pionLogger) Error(msg string) { l.emit(Level(slog.LevelError, msg), msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.emit(Level(slog.LevelError, msg), msg)
}

// routine lists what Pion warns about when a peer leaves or before its
// connection is up: the read loops of its candidates and its DTLS and SCTP
// end on a closed pipe, and ICE pings before it has candidate pairs. A hub
// sees them for every departing peer, so they are logged at Debug.
var routine = []string{
	"read/write on closed pipe",
	"conn is closed",
	"Failed to ping without candidate pairs",
	"no endpoint for packet",
	// A pair closed by the other side just as its DataChannel opened.
	"Failed to accept data channel",
}

// Level is the level of a Pion warning or error: Debug for routine ones,
// level otherwise.
func Level(level slog.Level, msg string) slog.Level {
	for _, r := range routine {
		if strings.Contains(msg, r) {
			return slog.LevelDebug
		}
	}
	return level
}
