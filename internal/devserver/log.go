package devserver

import (
	"context"
	"log/slog"
	"strings"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// levelSilent is above every level the server logs at.
const levelSilent = slog.LevelError + 100

// ignoredPrefixes start warnings the server logs on every start of a configuration chosen on
// purpose.
var ignoredPrefixes = []string{
	// The frontend HTTP API (and with it Nexus over HTTP) is off: sluice does not use it.
	"HTTP API port has not been set.",
}

func ignored(msg string) bool {
	for _, p := range ignoredPrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// serverLogger adapts an slog.Logger to the server's logger interface. The level is checked
// here, not only by the slog handler, so that a caller's verbose handler still gets a quiet
// server by default.
type serverLogger struct {
	log   *slog.Logger
	level *slog.LevelVar
}

var (
	_ log.Logger      = serverLogger{}
	_ log.WithLogger  = serverLogger{}
	_ log.SLogWrapper = serverLogger{}
)

func newServerLogger(l *slog.Logger, level *slog.LevelVar) serverLogger {
	return serverLogger{log: l.With("component", "temporal"), level: level}
}

func (s serverLogger) Debug(msg string, tags ...tag.Tag) { s.emit(slog.LevelDebug, msg, tags) }
func (s serverLogger) Info(msg string, tags ...tag.Tag)  { s.emit(slog.LevelInfo, msg, tags) }
func (s serverLogger) Warn(msg string, tags ...tag.Tag)  { s.emit(slog.LevelWarn, msg, tags) }
func (s serverLogger) Error(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }

// DPanic, Panic and Fatal are logged as errors: an embedded server must not take the host
// process down through its logger.
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }
func (s serverLogger) Panic(msg string, tags ...tag.Tag)  { s.emit(slog.LevelError, msg, tags) }
func (s serverLogger) Fatal(msg string, tags ...tag.Tag)  { s.emit(slog.LevelError, msg, tags) }

func (s serverLogger) With(tags ...tag.Tag) log.Logger {
	return serverLogger{log: s.log.With(attrsAny(tags)...), level: s.level}
}

// SLog is used by server components that log through slog directly; it applies the same level.
func (s serverLogger) SLog() *slog.Logger {
	return slog.New(levelHandler{Handler: s.log.Handler(), level: s.level})
}

func (s serverLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if level < s.level.Level() || ignored(msg) || !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.Any(t.Key(), t.Value())
	}
	s.log.LogAttrs(ctx, level, msg, attrs...)
}

func attrsAny(tags []tag.Tag) []any {
	out := make([]any, len(tags))
	for i, t := range tags {
		out[i] = slog.Any(t.Key(), t.Value())
	}
	return out
}

// levelHandler drops records below level before the wrapped handler sees them.
type levelHandler struct {
	slog.Handler
	level slog.Leveler
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelHandler{Handler: h.Handler.WithAttrs(attrs), level: h.level}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{Handler: h.Handler.WithGroup(name), level: h.level}
}
