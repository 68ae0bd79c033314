package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/devstack"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
)

func TestMain(m *testing.M) { harness.Main(m) }

// runContract runs the same cases against one object server.
func runContract(t *testing.T, cfg blob.Config) {
	ctx := context.Background()
	s, err := blob.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Opening again finds the bucket.
	if _, err := blob.Open(ctx, cfg); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	t.Run("round trip 20 MiB unknown length", func(t *testing.T) {
		data := make([]byte, 20<<20)
		_, _ = rand.Read(data)
		sum := sha256.Sum256(data)
		obj, err := s.Put(ctx, "docs/a", onlyReader{bytes.NewReader(data)}, -1, 0, "application/pdf")
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if obj.Size != int64(len(data)) || obj.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("Put = %+v", obj)
		}
		r, info, err := s.Open(ctx, "docs/a")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		got, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes (err %v), want %d byte-exact", len(got), err, len(data))
		}
		if info.ContentType != "application/pdf" {
			t.Fatalf("content type %q", info.ContentType)
		}
	})

	t.Run("over the limit leaves nothing", func(t *testing.T) {
		data := bytes.Repeat([]byte{'x'}, 3<<20)
		_, err := s.Put(ctx, "docs/big", onlyReader{bytes.NewReader(data)}, -1, 1<<20, "image/png")
		if !errors.Is(err, blob.ErrTooLarge) {
			t.Fatalf("Put over limit: err = %v, want ErrTooLarge", err)
		}
		if _, err := s.Stat(ctx, "docs/big"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Stat after refused upload: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Put(ctx, "docs/big", bytes.NewReader(data), int64(len(data)), 1<<20, "image/png"); !errors.Is(err, blob.ErrTooLarge) {
			t.Fatalf("declared size over limit: err = %v", err)
		}
	})

	t.Run("not found and delete", func(t *testing.T) {
		if _, err := s.Stat(ctx, "docs/none"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Stat missing: %v", err)
		}
		if _, err := s.Put(ctx, "docs/del", strings.NewReader("abc"), 3, 0, "text/plain"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "docs/del"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "docs/del"); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		keys, err := s.Keys(ctx, "docs/del")
		if err != nil || len(keys) != 0 {
			t.Fatalf("Keys after delete = %v, %v", keys, err)
		}
	})

	t.Run("presigned link reads once and expires", func(t *testing.T) {
		if _, err := s.Put(ctx, "docs/link", strings.NewReader("hello"), 5, 0, "text/plain"); err != nil {
			t.Fatal(err)
		}
		if cfg.Seal != nil {
			if _, err := s.PresignGet(ctx, "docs/link", time.Minute); !errors.Is(err, blob.ErrSealed) {
				t.Fatalf("PresignGet of a sealed object: %v, want ErrSealed", err)
			}
			return
		}
		u, err := s.PresignGet(ctx, "docs/link", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// A client trusting the server's CA (the system's roots when the
		// config names none).
		hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cfg.RootCAs}}}
		resp, err := hc.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello" {
			t.Fatalf("GET presigned = %d %q", resp.StatusCode, body)
		}
		time.Sleep(3 * time.Second)
		resp, err = hc.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("GET expired link = %d, want 403", resp.StatusCode)
		}
	})

	t.Run("wrong secret refused", func(t *testing.T) {
		bad := cfg
		bad.SecretKey = "wrong-secret-wrong-secret"
		if _, err := blob.Open(ctx, bad); err == nil {
			t.Fatal("Open with a wrong secret succeeded")
		}
	})
}

func TestMinIO(t *testing.T) {
	m := harness.MinIOServer(t)
	runContract(t, blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: m.Bucket(t)})
}

func TestMinIOEncrypted(t *testing.T) {
	m := harness.MinIOServer(t)
	runContract(t, blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: m.Bucket(t), Encrypt: true})
}

// TestMinIOTLS runs the contract over TLS, as production reaches its object
// storage, trusting the harness's private CA through Config.RootCAs.
func TestMinIOTLS(t *testing.T) {
	m := harness.MinIOTLSServer(t)
	cfg := blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: m.Bucket(t),
		UseTLS: true, RootCAs: m.RootCAs(), Encrypt: true}
	runContract(t, cfg)
	// Without the CA the server's certificate is not trusted.
	cfg.RootCAs = nil
	if _, err := blob.Open(context.Background(), cfg); !errors.Is(err, blob.ErrUnavailable) {
		t.Fatalf("Open without the CA: err = %v, want ErrUnavailable", err)
	}
}

func TestMinIODownIsUnavailable(t *testing.T) {
	// A closed port stands for a stopped server; the harness's own server
	// keeps running for the other tests.
	_, err := blob.Open(context.Background(), blob.Config{Endpoint: "127.0.0.1:1", AccessKey: "a", SecretKey: "b", Bucket: "x-y-z"})
	if !errors.Is(err, blob.ErrUnavailable) {
		t.Fatalf("Open on a closed port: err = %v, want ErrUnavailable", err)
	}
}

// onlyReader hides Seek and Len so minio-go cannot learn the size.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestEmbeddedS3 runs the same contract on the dev stack's embedded server.
func TestEmbeddedS3(t *testing.T) {
	s3, err := devstack.StartS3(context.Background(), devstack.S3Config{
		Dir: t.TempDir(), Addr: "127.0.0.1:0", AccessKey: "embedded-test", SecretKey: "embedded-test-secret-0123456789",
	})
	if err != nil {
		t.Fatalf("StartS3: %v", err)
	}
	defer s3.Stop()
	runContract(t, blob.Config{Endpoint: s3.Endpoint(), AccessKey: "embedded-test", SecretKey: "embedded-test-secret-0123456789", Bucket: "mfaflow-documents"})
}

// TestEmbeddedS3Sealed: the dev stack's gateway stores what it is sent as it
// is, SSE-S3 header or not (versitygw's POSIX backend has no encryption at
// rest), so the dev stack seals documents in the blob layer. The contract
// holds with sealing, and no plaintext reaches the disk.
func TestEmbeddedS3Sealed(t *testing.T) {
	dir := t.TempDir()
	s3, err := devstack.StartS3(context.Background(), devstack.S3Config{
		Dir: dir, Addr: "127.0.0.1:0", AccessKey: "embedded-test", SecretKey: "embedded-test-secret-0123456789",
	})
	if err != nil {
		t.Fatalf("StartS3: %v", err)
	}
	defer s3.Stop()
	cfg := blob.Config{Endpoint: s3.Endpoint(), AccessKey: "embedded-test", SecretKey: "embedded-test-secret-0123456789"}
	ctx := context.Background()
	marker := []byte("PLAINTEXT-MARKER-0123456789")
	onDisk := func(bucket, key string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, devstack.S3BucketsDir, bucket, key))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("SSE-S3 is accepted and ignored", func(t *testing.T) {
		sse := cfg
		sse.Bucket, sse.Encrypt = "mfaflow-sse", true
		s, err := blob.Open(ctx, sse)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "doc", bytes.NewReader(marker), int64(len(marker)), 0, "application/pdf"); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(onDisk("mfaflow-sse", "doc"), marker) {
			t.Fatal("the gateway encrypted at rest: the dev stack could use SSE-S3 instead of sealing")
		}
	})

	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	sealed := cfg
	sealed.Bucket, sealed.Seal = "mfaflow-sealed", keys
	runContract(t, sealed)

	t.Run("nothing readable on disk", func(t *testing.T) {
		s, err := blob.Open(ctx, sealed)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat(marker, 10_000) // several chunks
		obj, err := s.Put(ctx, "appeals/a/doc", onlyReader{bytes.NewReader(data)}, -1, 0, "application/pdf")
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if obj.Size != int64(len(data)) || obj.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("Put = %+v: size and hash must be of the plaintext", obj)
		}
		raw := onDisk("mfaflow-sealed", "appeals/a/doc")
		if bytes.Contains(raw, marker[:16]) {
			t.Fatal("plaintext on disk")
		}
		if st, err := s.Stat(ctx, "appeals/a/doc"); err != nil || st.Size != int64(len(data)) {
			t.Fatalf("Stat = %+v, %v", st, err)
		}
		// A store without the keys reads only the sealed bytes.
		plainCfg := sealed
		plainCfg.Seal = nil
		plain, err := blob.Open(ctx, plainCfg)
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := plain.Open(ctx, "appeals/a/doc")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		_ = r.Close()
		if bytes.Contains(got, marker[:16]) {
			t.Fatal("the object reads as plaintext without the keys")
		}
		// Another ring cannot open it.
		other, _ := mfa.GenerateKeyring()
		otherCfg := sealed
		otherCfg.Seal = other
		os2, err := blob.Open(ctx, otherCfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := os2.Open(ctx, "appeals/a/doc"); !errors.Is(err, blob.ErrUnknownKey) {
			t.Fatalf("Open with another ring: %v, want ErrUnknownKey", err)
		}
	})

	t.Run("Encrypt and Seal together refused", func(t *testing.T) {
		both := sealed
		both.Encrypt = true
		if _, err := blob.Open(ctx, both); err == nil {
			t.Fatal("Open with Encrypt and Seal succeeded")
		}
	})
}
