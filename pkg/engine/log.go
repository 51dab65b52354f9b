package engine

import "go.uber.org/zap"

func zapResult(r FileResult) []zap.Field {
	return []zap.Field{zap.String("path", r.Path), zap.Int64("size", r.Size), zap.String("status", string(r.Status)),
		zap.String("verified", r.Verified), zap.String("digest", r.Digest), zap.Int64("fetched", r.Fetched)}
}
