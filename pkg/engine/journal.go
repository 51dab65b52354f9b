package engine

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// journal records which chunks of a temporary file are complete, so a run
// killed midway continues where it stopped. Its first line identifies the
// download (path, size, source identity, chunk layout); each further line is
// the index of one chunk whose bytes were fully written. Chunk data is
// written before its line, so after a process kill every listed chunk is on
// disk (page cache survives the process). The final verification covers the
// whole file regardless, so a stale journal can cost a retry, never a bad file.
type journal struct {
	f *os.File
}

type journalHeader struct {
	Version  int    `json:"v"`
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Identity string `json:"identity"`
	Layout   string `json:"layout"`
}

// openJournal loads the chunks already done for hdr, or starts a new journal
// when there is none or it belongs to another download.
func openJournal(root *os.Root, name string, hdr journalHeader, chunks int) (*journal, []bool, error) {
	done := make([]bool, chunks)
	data, err := root.ReadFile(name)
	if err == nil {
		if ok := parseJournal(data, hdr, done); ok {
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				return &journal{f}, done, nil
			}
		}
		clear(done)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read resume journal: %w", err)
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("create resume journal: %w", err)
	}
	line, _ := json.Marshal(hdr)
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("write resume journal: %w", err)
	}
	return &journal{f}, done, nil
}

func parseJournal(data []byte, hdr journalHeader, done []bool) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() {
		return false
	}
	var got journalHeader
	if json.Unmarshal(sc.Bytes(), &got) != nil || got != hdr {
		return false
	}
	for sc.Scan() {
		// A torn last line (killed mid-write) fails to parse and is ignored.
		i, err := strconv.Atoi(sc.Text())
		if err == nil && i >= 0 && i < len(done) {
			done[i] = true
		}
	}
	return true
}

// markDone appends one chunk index; a single small O_APPEND write.
func (j *journal) markDone(i int) error {
	if j == nil {
		return nil
	}
	if _, err := j.f.Write(append(strconv.AppendInt(nil, int64(i), 10), '\n')); err != nil {
		return fmt.Errorf("write resume journal: %w", err)
	}
	return nil
}

func (j *journal) close() error {
	if j == nil {
		return nil
	}
	return j.f.Close()
}
