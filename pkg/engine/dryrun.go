package engine

// dryRunPlan lists what Run would produce and how each part would be
// verified, touching nothing: one row per file, one per blob of a unit (the
// files inside are known only once it is read), and the rows of links and
// checked files.
func (e *Engine) dryRunPlan(p *Plan, runs []*fileRun) *Report {
	rep := dryRunFiles(runs)
	for _, u := range p.Units {
		for _, b := range u.Blobs {
			chk, _ := chooseCheck(b.File, blobVerifyMode(e.verify))
			verified := chk.describe()
			if u.Verified != "" {
				verified = u.Verified
			}
			name := b.Path
			if b.Note != "" {
				name += ": " + b.Note
			}
			rep.Files = append(rep.Files, FileResult{Path: name, Size: b.Size, Status: StatusPlanned,
				Verified: verified, Digest: digestOf(&fileRun{chk: chk})})
			rep.Bytes += max(b.Size, 0)
		}
	}
	for _, l := range p.Links {
		for _, r := range l.Results {
			r.Status = StatusPlanned
			rep.Files = append(rep.Files, r)
			rep.Bytes += r.Size
		}
	}
	for _, c := range p.Checked {
		rep.Files = append(rep.Files, c)
		rep.Bytes += c.Size
	}
	return rep
}

// blobVerifyMode: a blob is always checked against the strongest checksum
// it has, even under --verify=size, since what is unpacked from it cannot
// be checked later; strict still refuses a blob with none.
func blobVerifyMode(m VerifyMode) VerifyMode {
	if m == VerifyStrict {
		return VerifyStrict
	}
	return VerifyAuto
}
