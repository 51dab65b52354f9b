package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// The load tests download 10,000 small files and one 8 GiB file from the
// real MinIO and report the binary's peak RSS and most open descriptors.
// They need minutes and ~17 GiB of disk, so they run only with SI_LOAD=1
// (hack/load.sh); without it they are skipped, never counted as passing.

// Bounds the binary must stay within whatever the size of the download.
const (
	loadMaxRSS = 512 << 20 // bytes
	loadMaxFDs = 256       // concurrency 16 → a handful per request, plus the runtime's
)

func loadGate(t *testing.T) testenv.MinIOServer {
	t.Helper()
	if os.Getenv("SI_LOAD") != "1" {
		t.Skip("load test: set SI_LOAD=1 (hack/load.sh) to run it")
	}
	return testenv.MinIO(t)
}

// loadFigures are what a load run measured.
type loadFigures struct {
	elapsed time.Duration
	// peakRSS is the kernel's high-water mark of the binary's resident
	// memory (VmHWM in /proc/PID/status), polled: it only grows, so the
	// last sample before exit misses at most the final 10 ms. (The
	// rusage of the reaped child is no use here: Linux carries the
	// forking test process's RSS over into it across exec.)
	peakRSS int64
	maxFDs  int // from polling /proc/PID/fd
	polls   int
}

func (f loadFigures) String() string {
	return fmt.Sprintf("%.1fs, peak RSS %.1f MiB, max open fds %d (%d samples)",
		f.elapsed.Seconds(), float64(f.peakRSS)/(1<<20), f.maxFDs, f.polls)
}

// runMeasured runs the binary to completion, sampling its open descriptors
// and memory high-water mark every 10 ms.
func runMeasured(t *testing.T, env []string, args ...string) loadFigures {
	t.Helper()
	start := time.Now()
	cmd, out := startSI(t, env, args...)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var f loadFigures
	fdDir := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case err = <-done:
			break loop
		case <-tick.C:
			if entries, rerr := os.ReadDir(fdDir); rerr == nil {
				f.maxFDs = max(f.maxFDs, len(entries))
				f.polls++
			}
			f.peakRSS = max(f.peakRSS, procStatus(cmd.Process.Pid, "VmHWM"))
		}
	}
	f.elapsed = time.Since(start)
	require.NoError(t, err, "storage-initializer failed: %s", tail(out.String(), 2000))
	require.Positive(t, f.peakRSS, "memory was sampled")
	return f
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func TestLoadManySmallFiles(t *testing.T) {
	m := loadGate(t)
	bucket := m.Bucket(t)
	const files, size = 10_000, 4 << 10
	want := map[string][]byte{}
	for i := range files {
		want[fmt.Sprintf("shard-%03d/f-%05d.bin", i%100, i)] = testenv.Random(size, int64(i))
	}
	start := time.Now()
	putAll(t, m, bucket, "small/", want, types.ChecksumAlgorithmCrc32c)
	t.Logf("uploaded %d × %d KiB in %s", files, size>>10, time.Since(start).Round(time.Second))

	dest := t.TempDir()
	f := runMeasured(t, append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+m.Endpoint), "s3://"+bucket+"/small", dest)
	t.Logf("LOAD %d × 4 KiB files: %s", files, f)
	s3e2eAssertTree(t, dest, want)
	assert.Less(t, f.peakRSS, int64(loadMaxRSS), "bounded memory")
	assert.Less(t, f.maxFDs, loadMaxFDs, "descriptors do not grow with the number of files")
	assert.Positive(t, f.polls, "the descriptors were sampled")
}

func TestLoadLargeFile(t *testing.T) {
	m := loadGate(t)
	bucket := m.Bucket(t)
	const partSize = 64 << 20
	const parts = 129 // 8 GiB + 64 MiB: past the 8 GiB mark
	start := time.Now()
	putGenerated(t, m, bucket, "large/model.safetensors", partSize, parts)
	total := int64(partSize) * parts
	t.Logf("uploaded %.2f GiB in %s", float64(total)/(1<<30), time.Since(start).Round(time.Second))

	dest := t.TempDir()
	sum := filepath.Join(t.TempDir(), "summary.json")
	f := runMeasured(t, append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+m.Endpoint), "--summary-json", sum, "s3://"+bucket+"/large", dest)
	t.Logf("LOAD one %.2f GiB file: %s, %.0f MiB/s", float64(total)/(1<<30), f, float64(total)/(1<<20)/f.elapsed.Seconds())
	s := s3e2eReadSummary(t, sum)
	require.Len(t, s.Files, 1)
	assert.Equal(t, "crc64nvme", s.Files[0].Verified, "the whole file was checked against the object's CRC64NVME")
	path := filepath.Join(dest, "model.safetensors")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, total, fi.Size())
	checkGeneratedSamples(t, path, partSize, parts)
	_, err = os.Stat(filepath.Join(dest, ".storage-initializer"))
	assert.True(t, os.IsNotExist(err), "no state folder left")
	assert.Less(t, f.peakRSS, int64(loadMaxRSS), "memory does not grow with the file size")
	assert.Less(t, f.maxFDs, loadMaxFDs)
}

// generatedPart is part i of the large object: a 64 MiB random block with
// the part number stamped in its first 8 bytes, so parts differ and any
// misplaced range shows.
func generatedPart(block []byte, i int) []byte {
	p := bytes.Clone(block)
	copy(p, fmt.Sprintf("%08d", i))
	return p
}

// putGenerated streams a multipart upload of parts generated parts with a
// full-object CRC64NVME, four parts in flight.
func putGenerated(t *testing.T, m testenv.MinIOServer, bucket, key string, partSize, parts int) {
	t.Helper()
	ctx, c := context.Background(), m.Client()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme, ChecksumType: types.ChecksumTypeFullObject})
	require.NoError(t, err)
	block := testenv.Random(partSize, 91)
	done := make([]types.CompletedPart, parts)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	errs := make(chan error, parts)
	for i := range parts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			body := generatedPart(block, i)
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(partSize)),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme})
			if err != nil {
				errs <- err
				return
			}
			done[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1)), ChecksumCRC64NVME: out.ChecksumCRC64NVME}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}, ChecksumType: types.ChecksumTypeFullObject})
	require.NoError(t, err)
}

// checkGeneratedSamples compares the start and a middle window of every
// part with what was uploaded (the binary verified the full CRC already;
// this checks the test's own expectations without reading 8 GiB twice).
func checkGeneratedSamples(t *testing.T, path string, partSize, parts int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	block := testenv.Random(partSize, 91)
	buf := make([]byte, 64<<10)
	for i := range parts {
		want := generatedPart(block[:len(buf)], i)
		_, err := f.ReadAt(buf, int64(i)*int64(partSize))
		require.NoError(t, err)
		require.Equal(t, want, buf, "start of part %d", i)
		mid := partSize / 2
		_, err = f.ReadAt(buf, int64(i)*int64(partSize)+int64(mid))
		require.NoError(t, err)
		require.Equal(t, block[mid:mid+len(buf)], buf, "middle of part %d", i)
	}
}

// procStatus reads one field (e.g. "VmHWM") of /proc/PID/status in bytes.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}
