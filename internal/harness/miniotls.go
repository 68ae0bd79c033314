package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var minioTLSOnce struct {
	sync.Once
	m   *MinIO
	err error
}

// MinIOTLSServer returns the process's MinIO server that serves only TLS, as
// production's object storage does, starting it on first use. Its
// certificate (for 127.0.0.1) is issued by a throwaway CA the harness makes
// for this process; clients trust it through RootCAs or Transport. It is
// another server than MinIOServer's, with its own data.
func MinIOTLSServer(tb testing.TB) *MinIO {
	tb.Helper()
	minioTLSOnce.Do(func() {
		minioTLSOnce.m, minioTLSOnce.err = startMinIO(tb, true)
		if minioTLSOnce.err == nil {
			atExit(func() { minioTLSOnce.m.kill() })
		}
	})
	if minioTLSOnce.err != nil {
		tb.Fatalf("harness: minio (tls): %v", minioTLSOnce.err)
	}
	return minioTLSOnce.m
}

// URL returns the server's base URL: https:// for a TLS server.
func (m *MinIO) URL() string {
	if m.Secure {
		return "https://" + m.Endpoint
	}
	return "http://" + m.Endpoint
}

// RootCAs returns a pool holding only the harness CA that issued a TLS
// server's certificate; nil for a plain server.
func (m *MinIO) RootCAs() *x509.CertPool {
	if !m.Secure {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(m.CACert)
	return pool
}

// Transport returns a new HTTP transport for the server: for a TLS server
// one that trusts the harness CA (and nothing else). Pass it as
// minio.Options.Transport.
func (m *MinIO) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if m.Secure {
		tr.TLSClientConfig = &tls.Config{RootCAs: m.RootCAs(), MinVersion: tls.VersionTLS12}
	}
	return tr
}

func (m *MinIO) certsDir() string { return filepath.Join(m.dir, "certs") }

// writeTLSCerts makes a throwaway CA and a server certificate for ip issued
// by it, writes the server's certificate and key where MinIO reads them
// (dir/public.crt, dir/private.key) and returns the CA's certificate (PEM).
// The CA's key is never written: nothing else can be issued by it.
func writeTLSCerts(dir, ip string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "mfaflow test harness CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: ip},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "public.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "private.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}
