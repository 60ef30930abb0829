package registry

import (
	"context"
	"io"
	"log/slog"
	"reflect"

	"github.com/sirupsen/logrus"
)

// distribution logs through logrus and finds its logger in the context
// under a key of an internal package (dcontext.loggerKey). cccp cannot
// import that package, so loggerContext answers that key by its type's
// name with a logrus entry that forwards to slog. This keeps distribution
// off logrus' global logger without changing any global state.

const dcontextPkg = "github.com/distribution/distribution/v3/internal/dcontext"

type loggerContext struct {
	context.Context
	entry *logrus.Entry
}

func (c loggerContext) Value(key any) any {
	if t := reflect.TypeOf(key); t != nil && t.Name() == "loggerKey" && t.PkgPath() == dcontextPkg {
		return c.entry
	}
	return c.Context.Value(key)
}

// distributionLogger returns a logrus entry that writes to log: logrus
// info and below become slog debug.
func distributionLogger(log *slog.Logger) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.DebugLevel)
	l.SetFormatter(nopFormatter{})
	l.AddHook(slogHook{log: log})
	return logrus.NewEntry(l)
}

// withLogger returns ctx carrying entry as distribution's logger.
func withLogger(ctx context.Context, entry *logrus.Entry) context.Context {
	return loggerContext{Context: ctx, entry: entry}
}

type nopFormatter struct{}

func (nopFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }

type slogHook struct{ log *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !h.log.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]any, 0, 2*len(e.Data)+2)
	attrs = append(attrs, "component", "distribution")
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	h.log.Log(ctx, level, e.Message, attrs...)
	return nil
}
