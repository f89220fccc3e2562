package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
)

// The embedded distribution application logs through logrus's standard
// logger, a process-wide global. routeLogs points that logger at slog, once
// per process: the newest registry's logger receives the entries (tests
// start many servers in one process; a real one starts one).
//
// Levels are turned down: the application logs every request at info and
// every client mistake (a HEAD for a blob the client is about to push, a
// digest that does not match) as an error, which for Gantry's log are
// debug details; a request that fails on the server's side stays an error.

var (
	logsOnce   sync.Once
	logsTarget atomic.Pointer[slog.Logger]
)

func routeLogs(log *slog.Logger) {
	logsTarget.Store(log.With("component", "registry"))
	logsOnce.Do(func() {
		std := logrus.StandardLogger()
		std.SetOutput(io.Discard)
		std.SetFormatter(discardFormatter{})
		std.AddHook(slogHook{})
	})
	// Entries below the level slog would print are dropped before logrus
	// builds them.
	lvl := logrus.WarnLevel
	if log.Enabled(context.Background(), slog.LevelDebug) {
		lvl = logrus.DebugLevel
	}
	logrus.StandardLogger().SetLevel(lvl)
}

type discardFormatter struct{}

func (discardFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }

type slogHook struct{}

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (slogHook) Fire(e *logrus.Entry) error {
	log := logsTarget.Load()
	if log == nil {
		return nil
	}
	level := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	}
	if _, perRequest := e.Data["http.request.id"]; perRequest {
		// What goes wrong inside one request is the client's doing (a
		// digest that does not match, a dropped connection) unless the
		// request ends in a 5xx the client did not cause.
		status, _ := e.Data["http.response.status"].(int)
		if status < 500 || e.Data["err.detail"] == "client disconnected" {
			level = slog.LevelDebug
		}
	}
	ctx := context.Background()
	if !log.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]slog.Attr, 0, len(e.Data))
	for k, v := range e.Data {
		switch k {
		case "go.version", "instance.id", "service", "version":
			continue // the same on every line
		}
		attrs = append(attrs, slog.String(k, fmt.Sprint(v)))
	}
	log.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}
