package engine

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// dirFDs are the folders one run writes its files through, each opened
// once through its os.Root (so resolved inside it): the state folder that
// holds the temp files, and DEST itself. A name directly inside one of them
// is then one syscall on its descriptor (openat, utimensat, renameat)
// instead of an os.Root call that opens and closes every folder on the way
// for each operation — five per small file before. Only single-component
// names are used with them, with O_NOFOLLOW/AT_SYMLINK_NOFOLLOW, and only
// folders the run created or was given: nothing resolves outside the root.
type dirFDs struct {
	mu sync.Mutex
	m  map[dirKey]dirFD
}

type dirKey struct {
	root *os.Root
	dir  string
}

type dirFD struct {
	f  *os.File // kept open (and alive) until close
	fd int
}

func newDirFDs() *dirFDs { return &dirFDs{m: map[dirKey]dirFD{}} }

// fd returns the descriptor of dir inside root, opening it the first time.
func (d *dirFDs) fd(root *os.Root, dir string) (int, error) {
	if d == nil {
		return -1, fmt.Errorf("internal: no folder descriptors")
	}
	k := dirKey{root, dir}
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.m[k]; ok {
		return e.fd, nil
	}
	f, err := root.Open(dir)
	if err != nil {
		return -1, err
	}
	e := dirFD{f: f, fd: int(f.Fd())}
	d.m[k] = e
	return e.fd, nil
}

// close closes every descriptor; the run is over.
func (d *dirFDs) close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, e := range d.m {
		e.f.Close()
		delete(d.m, k)
	}
}

// leaf reports whether name is one path component (no separator, not . or
// ..), the only kind of name used with a folder descriptor.
func leaf(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsRune(name, '/')
}
