package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Resume state of a staged image lives inside its stage, in a folder named
// like the engine's state folder: the extractor refuses that name for
// archive entries, so it never collides with model files, and it is
// removed before the stage is committed.
//
// Layers are extracted in parallel, each into a folder of its own; a layer
// whose digest checked out gets a ".done" record. A rerun after a kill
// keeps those layers (no second download) and redoes only the others. The
// merge of the layers into the stage root is marked "merging" while it runs
// (a kill then restarts the whole image, since the layer folders were being
// consumed) and "merged" when it is complete (a kill then only repeats the
// cleanup and the commit).
const (
	stateFolder = engine.StateDir
	markMerging = stateFolder + "/merging"
	markMerged  = stateFolder + "/merged"
)

type phase int

const (
	phaseExtract phase = iota // layers (some perhaps done) still to extract
	phaseReset                // an interrupted merge: start again
	phaseMerged               // the tree is complete: commit it
)

func layerDir(i int) string  { return fmt.Sprintf("%s/layer-%04d", stateFolder, i) }
func layerMark(i int) string { return layerDir(i) + ".done" }

// layerRecord is what a finished layer leaves for a rerun.
type layerRecord struct {
	Digest string   `json:"digest"`
	Roots  []string `json:"roots,omitempty"`
	Bytes  int64    `json:"bytes"`
}

func exists(root *os.Root, name string) bool {
	_, err := root.Lstat(name)
	return err == nil
}

func currentPhase(root *os.Root) (phase, error) {
	switch {
	case exists(root, markMerged):
		return phaseMerged, nil
	case exists(root, markMerging):
		return phaseReset, nil
	}
	names, err := readDirNames(root, ".")
	if err != nil {
		return 0, err
	}
	for _, n := range names {
		if n != stateFolder {
			// Content outside the state folder appears only during the
			// merge, and "merging" is removed only after "merged" is
			// written: the merge finished and its cleanup was cut short.
			return phaseMerged, nil
		}
	}
	return phaseExtract, nil
}

func readRecord(root *os.Root, i int, digest string) (layerRecord, bool) {
	var rec layerRecord
	data, err := root.ReadFile(layerMark(i))
	if err != nil || json.Unmarshal(data, &rec) != nil || rec.Digest != digest {
		return layerRecord{}, false
	}
	return rec, exists(root, layerDir(i))
}

// writeMark writes a marker file atomically (write, then rename).
func writeMark(root *os.Root, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := root.WriteFile(name+".tmp", data, 0o600); err != nil {
		return fmt.Errorf("record progress in %s: %w", name, err)
	}
	if err := root.Rename(name+".tmp", name); err != nil {
		return fmt.Errorf("record progress in %s: %w", name, err)
	}
	return nil
}

// clearState removes the state folder, the "merged" marker last.
func clearState(root *os.Root) error {
	names, err := readDirNames(root, stateFolder)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		if p := path.Join(stateFolder, n); p != markMerged {
			if err := root.RemoveAll(p); err != nil {
				return fmt.Errorf("clean staging state: %w", err)
			}
		}
	}
	if err := root.RemoveAll(stateFolder); err != nil {
		return fmt.Errorf("clean staging state: %w", err)
	}
	return nil
}

func readDirNames(root *os.Root, dir string) ([]string, error) {
	f, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
