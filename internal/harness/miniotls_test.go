package harness

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestMinIOTLSServer: the TLS server answers only TLS, with a certificate
// that only the harness CA vouches for, and works as object storage
// through minio-go trusting that CA.
func TestMinIOTLSServer(t *testing.T) {
	m := MinIOTLSServer(t)
	if !m.Secure || !strings.HasPrefix(m.URL(), "https://") || m.RootCAs() == nil {
		t.Fatalf("not a TLS server: secure %v, url %s", m.Secure, m.URL())
	}
	health := "/minio/health/live"

	// Plain HTTP to the same port gets no answer from MinIO: Go's TLS
	// server answers a plain request with its own 400.
	plain := &http.Client{Timeout: 30 * time.Second}
	resp, err := plain.Get("http://" + m.Endpoint + health)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP was served: %d %s", resp.StatusCode, body)
		}
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("HTTPS")) {
			t.Errorf("plain HTTP answered %d %q; want the TLS server's 400", resp.StatusCode, body)
		}
	}

	// A client that does not trust the harness CA refuses the certificate.
	untrusting := &http.Client{Timeout: 30 * time.Second, Transport: (&MinIO{}).Transport()}
	if resp, err := untrusting.Get(m.URL() + health); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without the harness CA connected (status %d)", resp.StatusCode)
	} else if !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("untrusting client: %v; want an unknown-authority error", err)
	}

	// A client trusting the CA gets TLS.
	trusting := &http.Client{Timeout: 30 * time.Second, Transport: m.Transport()}
	resp, err = trusting.Get(m.URL() + health)
	if err != nil {
		t.Fatalf("trusting client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || !resp.TLS.HandshakeComplete {
		t.Fatalf("trusting client: status %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}

	// minio-go over TLS: a bucket, an object written and read back.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mc, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure: true, Transport: m.Transport()})
	if err != nil {
		t.Fatal(err)
	}
	bucket := m.Bucket(t)
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("MakeBucket over TLS: %v", err)
	}
	want := bytes.Repeat([]byte("mfaflow "), 4096)
	if _, err := mc.PutObject(ctx, bucket, "o", bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("PutObject over TLS: %v", err)
	}
	o, err := mc.GetObject(ctx, bucket, "o", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(o)
	o.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("GetObject over TLS: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
}
