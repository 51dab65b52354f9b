package main

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger logs JSON (for pods) or console text (for people) to stderr.
func newLogger(cfg *config, w io.Writer) (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", cfg.logLevel)
	}
	var enc zapcore.Encoder
	if cfg.console {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.TimeKey = "" // a person at a terminal does not need timestamps
		ec.CallerKey = ""
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}
