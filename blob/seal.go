package blob

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// KeySource gives the keys that seal objects in this process (Config.Seal);
// *mfa.Keyring is one. CurrentID names the key that seals new objects;
// DeriveKeyFor derives a key from the named one for a label, and reports
// false when the ring no longer holds it.
type KeySource interface {
	CurrentID() string
	DeriveKeyFor(id, label string) ([]byte, bool)
}

// Errors of sealed objects.
var (
	// ErrDamaged: a sealed object does not authenticate (altered, cut
	// short, moved to another key, or not sealed at all).
	ErrDamaged = errors.New("blob: sealed object does not authenticate")
	// ErrUnknownKey: the key that sealed the object is no longer in the ring.
	ErrUnknownKey = errors.New("blob: the object's sealing key is not in the key ring")
	// ErrSealed: a link cannot serve a sealed object; read it through Open.
	ErrSealed = errors.New("blob: sealed objects are read through Open only")
)

// A sealed object is a fixed-size header, then the plaintext in chunks of
// sealChunk bytes, each sealed with AES-256-GCM (a 16-byte tag each; the
// last chunk may be short or empty). The header holds the magic, the key
// id (padded) and a random salt; the object's own key is derived from the
// ring's key, the salt and the object's name, so no two objects share a
// key and an object copied under another name does not open. A chunk's
// nonce is its number and a flag for the last one, so chunks cannot be
// reordered, dropped or cut off at a chunk boundary unnoticed. The header
// is the additional data of every chunk.
const (
	sealMagic   = "MFBLOB1\x00"
	sealKeyID   = 32 // bytes of the padded key id (mfa key ids are at most 32)
	sealSalt    = 32
	sealHeader  = len(sealMagic) + 1 + sealKeyID + sealSalt
	sealChunk   = 64 << 10
	sealTag     = 16
	sealLabel   = "blob-seal"
	sealInfoPfx = "mfaflow/blob/v1\x00"
)

// sealedSize is the stored size of n plaintext bytes, or -1 for unknown.
func sealedSize(n int64) int64 {
	if n < 0 {
		return -1
	}
	chunks := max(1, (n+sealChunk-1)/sealChunk)
	return int64(sealHeader) + n + chunks*sealTag
}

// openedSize is the plaintext size of a stored object of size n.
func openedSize(n int64) (int64, error) {
	body := n - int64(sealHeader)
	if body < sealTag {
		return 0, ErrDamaged
	}
	chunks := (body + sealChunk + sealTag - 1) / (sealChunk + sealTag)
	if body-chunks*sealTag < 0 {
		return 0, ErrDamaged
	}
	return body - chunks*sealTag, nil
}

// objectAEAD derives the AEAD of the object named key from the ring key id
// and the header's salt.
func objectAEAD(keys KeySource, id string, salt []byte, key string) (cipher.AEAD, error) {
	master, ok := keys.DeriveKeyFor(id, sealLabel)
	if !ok {
		return nil, ErrUnknownKey
	}
	k, err := hkdf.Key(sha256.New, master, salt, sealInfoPfx+key, 32)
	if err != nil {
		return nil, fmt.Errorf("blob: derive object key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("blob: cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

func chunkNonce(n uint64, last bool) []byte {
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[:8], n)
	if last {
		nonce[11] = 1
	}
	return nonce[:]
}

// sealReader reads the sealed form of its source.
type sealReader struct {
	src    *bufio.Reader
	aead   cipher.AEAD
	header []byte
	plain  []byte
	sealed []byte
	out    []byte // sealed bytes not yet read
	chunk  uint64
	done   bool
}

// newSealReader seals r for the object named key with the current key.
func newSealReader(keys KeySource, key string, r io.Reader) (*sealReader, error) {
	id := keys.CurrentID()
	if id == "" || len(id) > sealKeyID {
		return nil, ErrUnknownKey
	}
	header := make([]byte, 0, sealHeader)
	header = append(header, sealMagic...)
	header = append(header, byte(len(id)))
	header = append(header, id...)
	header = append(header, make([]byte, sealKeyID-len(id))...)
	salt := make([]byte, sealSalt)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("blob: salt: %w", err)
	}
	header = append(header, salt...)
	aead, err := objectAEAD(keys, id, salt, key)
	if err != nil {
		return nil, err
	}
	return &sealReader{src: bufio.NewReaderSize(r, sealChunk), aead: aead, header: header,
		plain: make([]byte, sealChunk), sealed: make([]byte, 0, sealChunk+sealTag), out: header}, nil
}

func (s *sealReader) Read(p []byte) (int, error) {
	if len(s.out) == 0 {
		if s.done {
			return 0, io.EOF
		}
		n, err := io.ReadFull(s.src, s.plain)
		last := false
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			last = true
		case err != nil:
			return 0, err
		default:
			if _, err := s.src.Peek(1); err == io.EOF {
				last = true
			} else if err != nil {
				return 0, err
			}
		}
		s.out = s.aead.Seal(s.sealed[:0], chunkNonce(s.chunk, last), s.plain[:n], s.header)
		s.chunk++
		s.done = last
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// openReader reads the plaintext of a sealed object.
type openReader struct {
	src    io.ReadCloser
	br     *bufio.Reader
	aead   cipher.AEAD
	header []byte
	sealed []byte
	out    []byte
	chunk  uint64
	done   bool
}

// newOpenReader reads the header of the sealed object named key from r and
// returns a reader of its plaintext; closing it closes r. It returns
// ErrDamaged for a header that is not ours and ErrUnknownKey for a key the
// ring no longer holds.
func newOpenReader(keys KeySource, key string, r io.ReadCloser) (*openReader, error) {
	br := bufio.NewReaderSize(r, sealChunk+sealTag)
	header := make([]byte, sealHeader)
	if _, err := io.ReadFull(br, header); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrDamaged
		}
		return nil, err
	}
	idLen := int(header[len(sealMagic)])
	if string(header[:len(sealMagic)]) != sealMagic || idLen == 0 || idLen > sealKeyID {
		return nil, ErrDamaged
	}
	idStart := len(sealMagic) + 1
	id := string(header[idStart : idStart+idLen])
	salt := header[idStart+sealKeyID:]
	aead, err := objectAEAD(keys, id, salt, key)
	if err != nil {
		return nil, err
	}
	return &openReader{src: r, br: br, aead: aead, header: header, sealed: make([]byte, sealChunk+sealTag)}, nil
}

func (o *openReader) Read(p []byte) (int, error) {
	if len(o.out) == 0 {
		if o.done {
			return 0, io.EOF
		}
		n, err := io.ReadFull(o.br, o.sealed)
		last := false
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			last = true
		case err != nil:
			return 0, err
		default:
			if _, err := o.br.Peek(1); err == io.EOF {
				last = true
			} else if err != nil {
				return 0, err
			}
		}
		if n < sealTag {
			return 0, ErrDamaged
		}
		pt, err := o.aead.Open(o.sealed[:0], chunkNonce(o.chunk, last), o.sealed[:n], o.header)
		if err != nil {
			return 0, ErrDamaged
		}
		o.out = pt
		o.chunk++
		o.done = last
	}
	n := copy(p, o.out)
	o.out = o.out[n:]
	return n, nil
}

func (o *openReader) Close() error { return o.src.Close() }
