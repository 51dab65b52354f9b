package checksum

import (
	"crypto/sha1"
	"hash"
	"strconv"
)

// newGitBlobSHA1 returns a SHA-1 already fed git's blob header, so writing
// the size bytes of content yields the blob's object id:
// sha1("blob " + decimal size + "\x00" + content). Reset restores the header.
func newGitBlobSHA1(size int64) hash.Hash {
	h := &gitBlobSHA1{Hash: sha1.New(), header: []byte("blob " + strconv.FormatInt(size, 10) + "\x00")}
	h.Reset()
	return h
}

type gitBlobSHA1 struct {
	hash.Hash
	header []byte
}

func (h *gitBlobSHA1) Reset() {
	h.Hash.Reset()
	h.Hash.Write(h.header)
}
