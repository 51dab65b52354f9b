package engine

import (
	"context"
	"errors"
)

// Fetch produces files under dest. See the package comment.
func (e *Engine) Fetch(ctx context.Context, dest string, files []File) (*Report, error) {
	return nil, errors.New("engine: not implemented yet")
}
