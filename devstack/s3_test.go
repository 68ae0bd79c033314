package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	testAccessKey = "devstack-access"
	testSecretKey = "devstack-secret-key-0123456789"
	testBucket    = "mfaflow-documents"
	testObject    = "appeals/a-1/id_holding_photo"
)

func s3Client(t *testing.T, endpoint, secret string) *minio.Client {
	t.Helper()
	c, err := minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(testAccessKey, secret, ""),
		Secure: false,
	})
	if err != nil {
		t.Fatalf("minio.New: %v", err)
	}
	return c
}

func getAll(ctx context.Context, c *minio.Client) ([]byte, error) {
	obj, err := c.GetObject(ctx, testBucket, testObject, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer func() { _ = obj.Close() }()
	return io.ReadAll(obj)
}

// TestS3 runs every S3 check in sequence: versitygw allows one gateway per
// process.
func TestS3(t *testing.T) {
	dir := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := S3Config{Dir: dir, Addr: "127.0.0.1:0", AccessKey: testAccessKey, SecretKey: testSecretKey, Logger: testLogger()}

	start := time.Now()
	s, err := StartS3(ctx, cfg)
	if err != nil {
		t.Fatalf("StartS3: %v", err)
	}
	t.Logf("StartS3 took %v (endpoint %s)", time.Since(start).Round(time.Millisecond), s.Endpoint())
	t.Cleanup(func() { _ = s.Stop() })

	if _, err := StartS3(ctx, S3Config{Dir: t.TempDir(), AccessKey: "a", SecretKey: "b"}); !errors.Is(err, ErrS3Running) {
		t.Fatalf("second StartS3 = %v, want ErrS3Running", err)
	}

	c := s3Client(t, s.Endpoint(), testSecretKey)
	if err := c.MakeBucket(ctx, testBucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("MakeBucket: %v", err)
	}
	data := make([]byte, 20<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	put := time.Now()
	info, err := c.PutObject(ctx, testBucket, testObject, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "image/jpeg"})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	t.Logf("PutObject 20 MiB took %v", time.Since(put).Round(time.Millisecond))
	if info.Size != int64(len(data)) {
		t.Fatalf("PutObject size = %d", info.Size)
	}
	got, err := getAll(ctx, c)
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("GetObject returned %d bytes that differ from the %d put", len(got), len(data))
	}

	bad := s3Client(t, s.Endpoint(), "not-the-secret")
	if _, err := bad.ListBuckets(ctx); err == nil {
		t.Fatal("ListBuckets with a wrong secret succeeded")
	} else if code := minio.ToErrorResponse(err).Code; code != "SignatureDoesNotMatch" {
		t.Logf("wrong secret refused with %q: %v", code, err)
	}
	if _, err := getAll(ctx, bad); err == nil {
		t.Fatal("GetObject with a wrong secret succeeded")
	}
	if _, err := bad.PutObject(ctx, testBucket, "intruder", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); err == nil {
		t.Fatal("PutObject with a wrong secret succeeded")
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if now, _ := os.Getwd(); now != wd {
		t.Fatalf("working directory after Stop = %s, want %s", now, wd)
	}

	// Restart on the same directory: the object and its metadata are kept.
	s2, err := StartS3(ctx, cfg)
	if err != nil {
		t.Fatalf("StartS3 again: %v", err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	c2 := s3Client(t, s2.Endpoint(), testSecretKey)
	st, err := c2.StatObject(ctx, testBucket, testObject, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("StatObject after restart: %v", err)
	}
	if st.Size != int64(len(data)) || st.ContentType != "image/jpeg" {
		t.Fatalf("after restart: size %d, content type %q", st.Size, st.ContentType)
	}
	got, err = getAll(ctx, c2)
	if err != nil {
		t.Fatalf("GetObject after restart: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("object changed across restart")
	}
	if _, err := c2.StatObject(ctx, testBucket, "intruder", minio.StatObjectOptions{}); err == nil {
		t.Fatal("object written with a wrong secret exists")
	}
	if err := s2.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if now, _ := os.Getwd(); now != wd {
		t.Fatalf("working directory after Stop = %s, want %s", now, wd)
	}

	// Configuration errors.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	for i, bad := range []S3Config{
		{Dir: dir, Addr: busy.Addr().String(), AccessKey: testAccessKey, SecretKey: testSecretKey},
		{Dir: dir, SecretKey: testSecretKey},
		{Dir: dir, AccessKey: testAccessKey},
		{AccessKey: testAccessKey, SecretKey: testSecretKey},
		{Dir: dir, Addr: "127.0.0.1", AccessKey: testAccessKey, SecretKey: testSecretKey},
	} {
		if s, err := StartS3(ctx, bad); err == nil {
			_ = s.Stop()
			t.Fatalf("StartS3 with bad config %d succeeded", i)
		}
	}
}
