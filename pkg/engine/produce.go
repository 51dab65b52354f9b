package engine

import "runtime"

// fileQueue is a started file's chunks still to hand to the workers.
type fileQueue struct {
	fr      *fileRun
	missing []int
}

// produce starts every file and queues its chunks. Up to spread() files
// that are being downloaded hand out their chunks in turn, each file's in
// order: the hashed frontier of every one of them advances during the
// download, so their digests (one sequential pass per file) run side by
// side on every core instead of one file after another, which left the
// last file's digest as a serial tail after the bytes had arrived.
func (r *run) produce(runs []*fileRun) {
	var active []*fileQueue
	next := 0
	for r.ctx.Err() == nil {
		for len(active) < spread() && next < len(runs) && r.ctx.Err() == nil {
			fr := runs[next]
			next++
			r.addPending(1)
			if q := r.startFile(fr); q != nil {
				active = append(active, q)
			}
		}
		if len(active) == 0 {
			return
		}
		q := active[0]
		active = active[1:]
		if !r.send(job{fr: q.fr, chunk: q.missing[0]}) {
			return
		}
		if q.missing = q.missing[1:]; len(q.missing) > 0 {
			active = append(active, q)
		}
	}
}

// spread is how many files hand out chunks together: one more than the
// cores, so the digests keep every core busy while one file waits.
func spread() int { return runtime.GOMAXPROCS(0) + 1 }
