package extract

import (
	"errors"
	"strings"
	"testing"
)

// A decoder fault (here a nil input, as a bug reached by hostile input
// would dereference or index out of range) fails the step with a
// corrupt-stream error instead of crashing the pull.
func TestDecoderFaultIsACorruptError(t *testing.T) {
	f := newInflater(nil, 1<<16)
	err := f.safeStep()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("safeStep = %v, want a *CorruptError", err)
	}
	if !strings.Contains(err.Error(), "decoder fault") {
		t.Fatalf("error %q does not name the decoder fault", err)
	}
}
