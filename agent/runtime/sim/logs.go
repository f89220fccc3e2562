package sim

import (
	"context"
	"io"
	"time"

	"github.com/gantry-dev/gantry/agent/runtime"
)

func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions) (io.ReadCloser, error) {
	r.mu.Lock()
	c := r.lookup(id)
	if c == nil {
		r.mu.Unlock()
		return nil, notFound("logs", id)
	}
	next := 0
	if opts.Tail > 0 {
		next = max(len(c.lines)-opts.Tail, 0)
	}
	r.mu.Unlock()

	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		for {
			r.mu.Lock()
			lines := c.lines[next:]
			next = len(c.lines)
			changed, running := c.changed, c.state == runtime.StateRunning || c.starting || c.state == runtime.StateCreated
			r.mu.Unlock()
			for _, l := range lines {
				if !selected(l, opts) {
					continue
				}
				text := l.text + "\n"
				if opts.Timestamps {
					text = l.at.UTC().Format(time.RFC3339Nano) + " " + text
				}
				if _, err := io.WriteString(pw, text); err != nil {
					return // the reader closed
				}
			}
			if !opts.Follow || (!running && len(lines) == 0) {
				pw.Close()
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			case <-done:
				return
			}
		}
	}()
	return &logReader{PipeReader: pr, done: done}, nil
}

func selected(l logLine, opts runtime.LogOptions) bool {
	if !opts.Since.IsZero() && l.at.Before(opts.Since) {
		return false
	}
	if opts.Stdout || opts.Stderr {
		return (l.stderr && opts.Stderr) || (!l.stderr && opts.Stdout)
	}
	return true
}

type logReader struct {
	*io.PipeReader
	done chan struct{}
}

func (l *logReader) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return l.PipeReader.Close()
}
