package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// raftLogger sends raft's hclog output to slog, at the same levels (Trace
// becomes Debug−4).
type raftLogger struct {
	log  *slog.Logger
	name string
	args []any
}

var _ hclog.Logger = (*raftLogger)(nil)

func newRaftLogger(l *slog.Logger) *raftLogger {
	return &raftLogger{log: l.With("component", "raft"), name: "raft"}
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (r *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	l := slogLevel(level)
	if !r.log.Enabled(context.Background(), l) {
		return
	}
	for i, a := range args {
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				args[i] = fmt.Sprintf(format, f[1:]...)
			}
		}
	}
	r.log.Log(context.Background(), l, msg, args...)
}
func (r *raftLogger) Trace(msg string, args ...any) { r.Log(hclog.Trace, msg, args...) }
func (r *raftLogger) Debug(msg string, args ...any) { r.Log(hclog.Debug, msg, args...) }
func (r *raftLogger) Info(msg string, args ...any)  { r.Log(hclog.Info, msg, args...) }
func (r *raftLogger) Warn(msg string, args ...any)  { r.Log(hclog.Warn, msg, args...) }
func (r *raftLogger) Error(msg string, args ...any) { r.Log(hclog.Error, msg, args...) }
func (r *raftLogger) enabled(l hclog.Level) bool {
	return r.log.Enabled(context.Background(), slogLevel(l))
}
func (r *raftLogger) IsTrace() bool         { return r.enabled(hclog.Trace) }
func (r *raftLogger) IsDebug() bool         { return r.enabled(hclog.Debug) }
func (r *raftLogger) IsInfo() bool          { return r.enabled(hclog.Info) }
func (r *raftLogger) IsWarn() bool          { return r.enabled(hclog.Warn) }
func (r *raftLogger) IsError() bool         { return r.enabled(hclog.Error) }
func (r *raftLogger) ImpliedArgs() []any    { return r.args }
func (r *raftLogger) Name() string          { return r.name }
func (r *raftLogger) SetLevel(hclog.Level)  {}
func (r *raftLogger) GetLevel() hclog.Level { return hclog.NoLevel }
func (r *raftLogger) With(args ...any) hclog.Logger {
	return &raftLogger{log: r.log.With(args...), name: r.name, args: append(r.args[:len(r.args):len(r.args)], args...)}
}
func (r *raftLogger) Named(name string) hclog.Logger {
	return &raftLogger{log: r.log.With("logger", r.name+"."+name), name: r.name + "." + name, args: r.args}
}
func (r *raftLogger) ResetNamed(name string) hclog.Logger {
	return &raftLogger{log: r.log.With("logger", name), name: name, args: r.args}
}
func (r *raftLogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(r.StandardWriter(nil), "", 0)
}
func (r *raftLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &levelWriter{log: r.log}
}

// levelWriter turns the lines of a standard logger that start with a level
// in brackets ("[WARN] memberlist: ..."), as memberlist's do, into slog
// records at that level.
type levelWriter struct {
	log *slog.Logger
}

func newGossipLogger(l *slog.Logger) *log.Logger {
	return log.New(&levelWriter{log: l.With("component", "gossip")}, "", 0)
}

func (w *levelWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, l := range []struct {
		tag   string
		level slog.Level
	}{
		{"[TRACE]", slog.LevelDebug - 4},
		{"[DEBUG]", slog.LevelDebug},
		{"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn},
		{"[ERR]", slog.LevelError},
		{"[ERROR]", slog.LevelError},
	} {
		if rest, ok := bytes.CutPrefix(line, []byte(l.tag)); ok {
			level, line = l.level, bytes.TrimSpace(rest)
			break
		}
	}
	if w.log.Enabled(context.Background(), level) {
		w.log.Log(context.Background(), level, string(line))
	}
	return len(p), nil
}
