// Package blob keeps appeal documents in S3-compatible object storage through
// minio-go: MinIO in production and tests, the embedded gateway in the dev
// stack. Uploads stream: the body is hashed while it is sent, never buffered
// whole in memory.
package blob

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// Errors returned by Store. Callers check them with errors.Is.
var (
	ErrNotFound    = errors.New("blob: not found")
	ErrUnavailable = errors.New("blob: object storage unavailable")
	ErrTooLarge    = errors.New("blob: object too large")
)

// Config says how to reach the object store.
type Config struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Bucket    string
	UseTLS    bool
	// RootCAs, when set, are the only authorities trusted for the server's
	// TLS certificate (a private CA); nil means the system's roots.
	RootCAs *x509.CertPool
	// Encrypt asks the server to encrypt objects at rest (SSE-S3). The
	// server must have a KMS configured; MinIO with MINIO_KMS_SECRET_KEY does.
	Encrypt bool
	// Seal encrypts objects in this process instead, with keys from the
	// ring (AES-256-GCM in 64 KiB chunks, see seal.go), for a server that
	// cannot encrypt at rest: the dev stack's embedded gateway stores what
	// it is sent as it is. Sizes and SHA-256 stay those of the plaintext;
	// Open decrypts; PresignGet refuses. Not together with Encrypt.
	Seal KeySource
}

// Store reads and writes objects in one bucket.
type Store struct {
	c      *minio.Client
	bucket string
	sse    encrypt.ServerSide
	seal   KeySource
}

// Object describes a stored object.
type Object struct {
	Key         string
	Size        int64
	SHA256      string // hex
	ContentType string
}

// Open connects to the object store and creates the bucket when it is missing.
// It returns ErrUnavailable when the server cannot be reached.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Encrypt && cfg.Seal != nil {
		return nil, errors.New("blob: Encrypt and Seal exclude each other")
	}
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseTLS,
	}
	if cfg.UseTLS && cfg.RootCAs != nil {
		// minio-go's own default transport, trusting only RootCAs.
		tr, err := minio.DefaultTransport(true)
		if err != nil {
			return nil, fmt.Errorf("blob: client: %w", err)
		}
		tr.TLSClientConfig = tr.TLSClientConfig.Clone()
		tr.TLSClientConfig.RootCAs = cfg.RootCAs
		opts.Transport = tr
	}
	c, err := minio.New(cfg.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("blob: client: %w", err)
	}
	s := &Store{c: c, bucket: cfg.Bucket, seal: cfg.Seal}
	if cfg.Encrypt {
		s.sse = encrypt.NewSSE()
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, wrap("bucket check", err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{}); err != nil {
			// Another replica may have created it meanwhile.
			if ok, err2 := c.BucketExists(ctx, cfg.Bucket); err2 != nil || !ok {
				return nil, wrap("make bucket", err)
			}
		}
	}
	return s, nil
}

// Ping checks the bucket can be reached. It returns ErrUnavailable otherwise.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return wrap("ping", err)
	}
	if !ok {
		return fmt.Errorf("%w: bucket missing", ErrUnavailable)
	}
	return nil
}

// Put streams r to key and returns its size and SHA-256. When size is -1 the
// length is unknown and the upload goes in parts. At most max bytes are
// accepted (0: no limit): a longer body returns ErrTooLarge and leaves no
// object behind. It returns ErrUnavailable when the store cannot be reached.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size, max int64, contentType string) (Object, error) {
	h := sha256.New()
	var body io.Reader = io.TeeReader(r, h)
	var lim *limitReader
	if max > 0 {
		if size > max {
			return Object{}, ErrTooLarge
		}
		lim = &limitReader{r: body, n: max}
		body = lim
	}
	// minio-go's defaults are kept on purpose. With the length known (the
	// API passes Content-Length) and under its 16 MiB part size, minio-go
	// sends one PUT that reads straight from body: no part is buffered and
	// no copy of ours is left to tune. Parallel parts (ConcurrentStreamParts,
	// NumThreads) and SendContentMd5 would buffer parts or the whole body,
	// so memory would grow with the file.
	//
	// The payload stays signed. Over plain HTTP minio-go signs every chunk
	// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD: a SHA-256 of the bytes on each
	// end, besides h here); over TLS it already sends UNSIGNED-PAYLOAD,
	// since TLS authenticates the bytes. DisableContentSha256 would lift a
	// 10 MiB upload through the API from about 0.8× to about 1.0× of a bare
	// PutObject in the benchmark (MinIO then checks no signatures either),
	// and it is not taken: on a plain link the chunk signatures are what
	// ties the stored bytes to our credentials. A CRC32C trailer is unkeyed
	// and, on an unsigned payload, unsigned too, so whoever can alter the
	// traffic can alter the document and its checksum together. Our own
	// SHA-256 cannot stand in: checking it after the upload means reading
	// the object back (another transfer and SSE decryption, dearer than the
	// signature) or trusting a checksum in a response the same party can
	// rewrite.
	//
	// A sealing store encrypts here, after the hash and the limit (both
	// of the plaintext); the stored size follows from the plaintext's.
	stored := size
	var plain *countReader
	if s.seal != nil {
		plain = &countReader{r: body}
		sr, err := newSealReader(s.seal, key, plain)
		if err != nil {
			return Object{}, err
		}
		body, stored = sr, sealedSize(size)
	}
	opts := minio.PutObjectOptions{ContentType: contentType, ServerSideEncryption: s.sse}
	if size < 0 {
		opts.PartSize = 5 << 20
	}
	info, err := s.c.PutObject(ctx, s.bucket, key, body, stored, opts)
	if lim != nil && lim.over {
		_ = s.Delete(context.WithoutCancel(ctx), key)
		return Object{}, ErrTooLarge
	}
	if err != nil {
		_ = s.Delete(context.WithoutCancel(ctx), key)
		return Object{}, wrap("put", err)
	}
	n := info.Size
	if plain != nil {
		n = plain.n
	}
	return Object{Key: key, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), ContentType: contentType}, nil
}

// Open returns a reader for key. It returns ErrNotFound or ErrUnavailable;
// a sealing store also ErrDamaged or ErrUnknownKey, and its reader returns
// ErrDamaged for a chunk that does not authenticate.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	o, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Object{}, wrap("get", err)
	}
	st, err := o.Stat()
	if err != nil {
		_ = o.Close()
		return nil, Object{}, wrap("stat", err)
	}
	if s.seal == nil {
		return o, Object{Key: key, Size: st.Size, ContentType: st.ContentType}, nil
	}
	size, err := openedSize(st.Size)
	if err != nil {
		_ = o.Close()
		return nil, Object{}, err
	}
	r, err := newOpenReader(s.seal, key, o)
	if err != nil {
		_ = o.Close()
		var resp minio.ErrorResponse
		if errors.As(err, &resp) {
			return nil, Object{}, wrap("get", err)
		}
		return nil, Object{}, err
	}
	return r, Object{Key: key, Size: size, ContentType: st.ContentType}, nil
}

// Stat describes key. It returns ErrNotFound or ErrUnavailable.
func (s *Store) Stat(ctx context.Context, key string) (Object, error) {
	st, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, wrap("stat", err)
	}
	size := st.Size
	if s.seal != nil {
		if size, err = openedSize(size); err != nil {
			return Object{}, err
		}
	}
	return Object{Key: key, Size: size, ContentType: st.ContentType}, nil
}

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(wrap("", err), ErrNotFound) {
			return nil
		}
		return wrap("delete", err)
	}
	return nil
}

// PresignGet returns a link that reads key for ttl. A sealing store returns
// ErrSealed: the link would serve the sealed bytes.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (*url.URL, error) {
	if s.seal != nil {
		return nil, ErrSealed
	}
	u, err := s.c.PresignedGetObject(ctx, s.bucket, key, ttl, nil)
	if err != nil {
		return nil, wrap("presign", err)
	}
	return u, nil
}

// Keys lists the keys under prefix.
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, wrap("list", o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys, nil
}

// wrap classifies a minio-go error without exposing its text to clients.
func wrap(op string, err error) error {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case minio.NoSuchKey, minio.NoSuchBucket:
			return fmt.Errorf("%w: %s", ErrNotFound, op)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return fmt.Errorf("blob: %s: access denied: %w", op, err)
		}
		if resp.StatusCode >= 500 || resp.StatusCode == 0 {
			return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
		}
		return fmt.Errorf("blob: %s: %w", op, err)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// limitReader fails once more than n bytes were read.
type limitReader struct {
	r    io.Reader
	n    int64
	over bool
}

var errOver = errors.New("blob: body over the limit")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		l.over = true
		return 0, errOver
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		l.over = true
		return 0, errOver
	}
	return n, err
}
