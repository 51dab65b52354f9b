package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

// put uploads a folder to S3 (MinIO) with the chosen checksum algorithm;
// files larger than the part size are uploaded as multipart objects.
func put(args []string) error {
	fl := flag.NewFlagSet("put", flag.ContinueOnError)
	endpoint := fl.String("endpoint", "", "S3 endpoint URL")
	bucket := fl.String("bucket", "", "bucket (created if missing)")
	prefix := fl.String("prefix", "", "key prefix (folder)")
	alg := fl.String("checksum", "crc64nvme", "crc64nvme, crc32c, sha256 or none")
	partSize := fl.String("part-size", "64MiB", "multipart part size")
	access := fl.String("access-key", os.Getenv("SI_MINIO_ACCESS_KEY"), "access key")
	secret := fl.String("secret-key", os.Getenv("SI_MINIO_SECRET_KEY"), "secret key")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 || *endpoint == "" || *bucket == "" {
		return fmt.Errorf("put: want -endpoint, -bucket and one DIR")
	}
	ps, err := parseSize(*partSize)
	if err != nil {
		return err
	}
	ctx := context.Background()
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: endpoint, UsePathStyle: true,
		Credentials:                aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(*access, *secret, "")),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil &&
		!strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") {
		return fmt.Errorf("create bucket: %w", err)
	}
	root := fl.Arg(0)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		key := strings.TrimPrefix(strings.TrimSuffix(*prefix, "/")+"/"+filepath.ToSlash(rel), "/")
		g.Go(func() error {
			return upload(gctx, client, *bucket, key, p, types.ChecksumAlgorithm(strings.ToUpper(*alg)), ps)
		})
		return nil
	})
	if err != nil {
		return err
	}
	return g.Wait()
}

func upload(ctx context.Context, c *s3.Client, bucket, key, path string, alg types.ChecksumAlgorithm, partSize int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if alg == "NONE" {
		alg = ""
	}
	if fi.Size() <= partSize {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: f, ContentLength: aws.Int64(fi.Size()), ChecksumAlgorithm: alg})
		if err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		return nil
	}
	in := &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key, ChecksumAlgorithm: alg}
	if alg == types.ChecksumAlgorithmCrc64nvme {
		in.ChecksumType = types.ChecksumTypeFullObject
	}
	mu, err := c.CreateMultipartUpload(ctx, in)
	if err != nil {
		return fmt.Errorf("create multipart %s: %w", key, err)
	}
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < fi.Size(); n, off = n+1, off+partSize {
		size := min(partSize, fi.Size()-off)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId, PartNumber: aws.Int32(n),
			Body: io.NewSectionReader(f, off, size), ContentLength: aws.Int64(size), ChecksumAlgorithm: alg})
		if err != nil {
			return fmt.Errorf("upload part %d of %s: %w", n, key, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag,
			ChecksumCRC32C: out.ChecksumCRC32C, ChecksumSHA256: out.ChecksumSHA256, ChecksumCRC64NVME: out.ChecksumCRC64NVME,
			ChecksumCRC32: out.ChecksumCRC32, ChecksumSHA1: out.ChecksumSHA1})
	}
	cin := &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
	if _, err := c.CompleteMultipartUpload(ctx, cin); err != nil {
		return fmt.Errorf("complete multipart %s: %w", key, err)
	}
	return nil
}
