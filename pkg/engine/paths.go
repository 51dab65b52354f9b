package engine

import "github.com/storage-initializer/storage-initializer/pkg/destpath"

// StateDir is the folder inside DEST that holds temporary files, resume
// journals and staging trees (see destpath.StateDir).
const StateDir = destpath.StateDir

// ErrUnsafePath is returned for a relative path that would leave DEST.
var ErrUnsafePath = destpath.ErrUnsafePath

// CleanRel validates a path that must stay inside DEST (see destpath.CleanRel).
func CleanRel(p string) (string, error) { return destpath.CleanRel(p) }
