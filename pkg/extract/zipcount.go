package extract

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Zip record signatures and sizes (APPNOTE.TXT 4.3).
const (
	sigEOCD        = 0x06054b50
	sigZip64EOCD   = 0x06064b50
	sigZip64Locate = 0x07064b50
	sigDirHeader   = 0x02014b50
	lenEOCD        = 22
	lenDirHeader   = 46
	maxZipComment  = 65535
)

// zipEntryCount counts a zip's central directory headers, stopping past
// limit, without holding them: archive/zip keeps every header in memory
// and checks the declared count only modulo 65536, so a small archive can
// make it allocate millions of entries before MaxEntries is looked at.
// ok is false when the directory cannot be located; archive/zip then
// reports the archive's damage itself.
func zipEntryCount(r io.ReaderAt, size, limit int64) (n int64, ok bool) {
	off, ok := zipDirOffset(r, size)
	if !ok {
		return 0, false
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, off, size-off), 64<<10)
	var h [lenDirHeader]byte
	for n <= limit {
		if _, err := io.ReadFull(br, h[:]); err != nil || binary.LittleEndian.Uint32(h[:]) != sigDirHeader {
			return n, true
		}
		n++
		skip := int64(binary.LittleEndian.Uint16(h[28:])) + int64(binary.LittleEndian.Uint16(h[30:])) +
			int64(binary.LittleEndian.Uint16(h[32:]))
		if _, err := br.Discard(int(skip)); err != nil {
			return n, true
		}
	}
	return n, true
}

// zipDirOffset finds where the central directory starts, from the end of
// central directory record (or its zip64 version).
func zipDirOffset(r io.ReaderAt, size int64) (int64, bool) {
	tail := min(size, lenEOCD+maxZipComment)
	if tail < lenEOCD {
		return 0, false
	}
	buf := make([]byte, tail)
	if _, err := r.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return 0, false
	}
	at := -1
	for i := len(buf) - lenEOCD; i >= 0; i-- {
		if binary.LittleEndian.Uint32(buf[i:]) == sigEOCD {
			at = i
			break
		}
	}
	if at < 0 {
		return 0, false
	}
	eocd := buf[at:]
	off := int64(binary.LittleEndian.Uint32(eocd[16:]))
	if off == 0xffffffff || binary.LittleEndian.Uint16(eocd[10:]) == 0xffff {
		// zip64: the locator sits just before the EOCD record.
		eocdPos := size - tail + int64(at)
		var loc [20]byte
		if eocdPos < 20 {
			return 0, false
		}
		if _, err := r.ReadAt(loc[:], eocdPos-20); err != nil || binary.LittleEndian.Uint32(loc[:]) != sigZip64Locate {
			return off, off < size
		}
		rec := int64(binary.LittleEndian.Uint64(loc[8:]))
		var z [56]byte
		if rec < 0 || rec > size-56 {
			return 0, false
		}
		if _, err := r.ReadAt(z[:], rec); err != nil || binary.LittleEndian.Uint32(z[:]) != sigZip64EOCD {
			return 0, false
		}
		off = int64(binary.LittleEndian.Uint64(z[48:]))
	}
	if off < 0 || off >= size {
		return 0, false
	}
	return off, true
}
