package mfa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// PSKC limits.
const (
	pskcNamespace = "urn:ietf:params:xml:ns:keyprov:pskc"
	// MaxXMLDepth is the deepest element nesting ParsePSKC accepts.
	MaxXMLDepth = 32
	// DefaultMaxPBKDF2Iterations bounds the work a PSKC document can ask
	// for when PSKCOptions.MaxIterations is 0.
	DefaultMaxPBKDF2Iterations = 1_000_000
	maxXMLTokens               = 2_000_000
)

// PSKC algorithm identifiers (RFC 6030 and the XML Encryption and Signature
// specifications).
const (
	pskcTOTP    = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
	pskcHOTP    = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
	pskcPIN     = "urn:ietf:params:xml:ns:keyprov:pskc:pin" // a PIN, not a token (RFC 6030 §10.2)
	xencAES128  = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
	xencAES192  = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
	xencAES256  = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
	pbkdf2URI   = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2"
	pbkdf2URI11 = "http://www.w3.org/2009/xmlenc11#pbkdf2"
)

// PSKCOptions are the secrets and limits for ParsePSKC.
type PSKCOptions struct {
	// PreSharedKey decrypts a document whose EncryptionKey is a KeyName
	// (16, 24 or 32 bytes, per the document's AES-CBC method).
	PreSharedKey []byte
	// Password derives the key of a document whose EncryptionKey is a PBKDF2
	// DerivedKey.
	Password string
	// MaxBytes caps the input; 0 means DefaultImportMaxBytes.
	MaxBytes int64
	// MaxIterations caps the PBKDF2 iteration count a document may ask for;
	// 0 means DefaultMaxPBKDF2Iterations.
	MaxIterations int
}

// String redacts the key and the password.
func (o PSKCOptions) String() string {
	return fmt.Sprintf("mfa.PSKCOptions{PreSharedKey: %s, Password: %s, MaxBytes: %d, MaxIterations: %d}", redacted, redacted, o.MaxBytes, o.MaxIterations)
}

// GoString redacts the key and the password.
func (o PSKCOptions) GoString() string { return o.String() }

// Format redacts the key and the password, for every verb.
func (o PSKCOptions) Format(f fmt.State, _ rune) { io.WriteString(f, o.String()) }

type pskcContainer struct {
	XMLName       xml.Name           `xml:"KeyContainer"`
	Version       string             `xml:"Version,attr"`
	EncryptionKey *pskcEncryptionKey `xml:"EncryptionKey"`
	MACMethod     *pskcMACMethod     `xml:"MACMethod"`
	KeyPackages   []pskcKeyPackage   `xml:"KeyPackage"`
}

type pskcEncryptionKey struct {
	KeyName    *string         `xml:"KeyName"`
	DerivedKey *pskcDerivedKey `xml:"DerivedKey"`
}

type pskcAlgorithmID struct {
	Algorithm string `xml:"Algorithm,attr"`
}

type pskcDerivedKey struct {
	Method struct {
		Algorithm string `xml:"Algorithm,attr"`
		Params    *struct {
			Salt struct {
				Specified *string `xml:"Specified"`
			} `xml:"Salt"`
			IterationCount string          `xml:"IterationCount"`
			KeyLength      string          `xml:"KeyLength"`
			PRF            pskcAlgorithmID `xml:"PRF"`
		} `xml:"PBKDF2-params"`
	} `xml:"KeyDerivationMethod"`
}

type pskcMACMethod struct {
	Algorithm string         `xml:"Algorithm,attr"`
	MACKey    *pskcEncrypted `xml:"MACKey"`
}

type pskcEncrypted struct {
	EncryptionMethod pskcAlgorithmID `xml:"EncryptionMethod"`
	CipherValue      string          `xml:"CipherData>CipherValue"`
}

type pskcKeyPackage struct {
	SerialNo string    `xml:"DeviceInfo>SerialNo"`
	Keys     []pskcKey `xml:"Key"`
}

type pskcKey struct {
	Algorithm string `xml:"Algorithm,attr"`
	Params    struct {
		Suite          string `xml:"Suite"`
		ResponseFormat *struct {
			Length   string `xml:"Length,attr"`
			Encoding string `xml:"Encoding,attr"`
		} `xml:"ResponseFormat"`
	} `xml:"AlgorithmParameters"`
	Data struct {
		Secret       *pskcValue `xml:"Secret"`
		Counter      *pskcValue `xml:"Counter"`
		TimeInterval *pskcValue `xml:"TimeInterval"`
	} `xml:"Data"`
	Policy struct {
		PINPolicy *struct {
			PINUsageMode string `xml:"PINUsageMode,attr"`
		} `xml:"PINPolicy"`
	} `xml:"Policy"`
}

type pskcValue struct {
	PlainValue     *string        `xml:"PlainValue"`
	EncryptedValue *pskcEncrypted `xml:"EncryptedValue"`
	ValueMAC       *string        `xml:"ValueMAC"`
}

func pskcErr(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidPSKC, reason) }

// ParsePSKC reads a hardware token inventory in PSKC (RFC 6030): one token
// per KeyPackage, numbered from 1 in Token.Row, with the serial from
// DeviceInfo/SerialNo, the secret from
// Data/Secret (PlainValue, or EncryptedValue in AES-CBC with the IV
// prefixed), digits from AlgorithmParameters/ResponseFormat Length, the hash
// from AlgorithmParameters/Suite (default SHA1) and the period from
// Data/TimeInterval (default 30). Encrypted documents need
// opts.PreSharedKey (EncryptionKey/KeyName) or opts.Password
// (EncryptionKey/DerivedKey with PBKDF2, PRF hmac-sha1 or hmac-sha256);
// every encrypted secret must carry a ValueMAC, checked in constant time over
// IV and ciphertext with the MACMethod's (encrypted) MACKey before
// decrypting. A KeyPackage whose key is a PIN (algorithm
// urn:ietf:params:xml:ns:keyprov:pskc:pin, such as the local PIN a card's
// PINPolicy names by PINKeyId) is no token: it is listed in Skipped, never
// decrypted, and its serial (usually the card's) does not count as a
// duplicate. A UTF-8 byte-order mark before the document is ignored (XML
// 1.0 §4.3.3).
//
// The parser is safe for untrusted input: it reads at most opts.MaxBytes
// (ErrTooLarge past it), refuses any DOCTYPE, DTD or entity declaration and
// nesting deeper than MaxXMLDepth (ErrHostileXML), parses in strict mode and
// expands no entity but the five predefined ones.
//
// It returns the valid tokens and a RowError for every rejected KeyPackage;
// deciding to import nothing when any is rejected is the caller's. A
// document that cannot be read as a whole returns an empty Parsed and an
// error wrapping ErrInvalidPSKC, ErrPSKCKey, ErrHostileXML or ErrTooLarge.
// No error contains key material.
func ParsePSKC(r io.Reader, opts PSKCOptions) (Parsed, error) {
	data, err := readCapped(r, opts.MaxBytes)
	if err != nil {
		return Parsed{}, err
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if err := screenXML(data); err != nil {
		return Parsed{}, err
	}
	var c pskcContainer
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	if err := d.Decode(&c); err != nil {
		return Parsed{}, syntaxErr(err)
	}
	if c.XMLName.Space != pskcNamespace {
		return Parsed{}, pskcErr("root must be a PSKC KeyContainer")
	}
	if c.Version != "1.0" {
		return Parsed{}, pskcErr("version must be 1.0")
	}
	keys, err := c.keys(opts)
	if err != nil {
		return Parsed{}, err
	}
	set := newImportSet()
	for i := range c.KeyPackages {
		row := i + 1
		p := &c.KeyPackages[i]
		if len(p.Keys) == 1 && p.Keys[0].Algorithm == pskcPIN {
			set.skip(row, strings.TrimSpace(p.SerialNo), reasonPINKey)
			continue
		}
		tok, reason := keys.token(p)
		if reason != "" {
			set.reject(row, tok.Serial, reason)
			continue
		}
		set.add(row, tok)
	}
	keys.wipe()
	return set.parsed(), nil
}

// screenXML walks every token before anything is decoded into structs and
// refuses directives (DOCTYPE, ENTITY), excessive nesting and a root that is
// not the only element.
func screenXML(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	depth, roots, n := 0, 0, 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return syntaxErr(err)
		}
		if n++; n > maxXMLTokens {
			return fmt.Errorf("%w: too many xml tokens", ErrHostileXML)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return fmt.Errorf("%w: DOCTYPE and entity declarations are not allowed", ErrHostileXML)
		case xml.ProcInst:
			if t.Target == "xml" && n != 1 {
				return pskcErr("misplaced xml declaration")
			}
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 {
					return pskcErr("more than one root element")
				}
			}
			if depth++; depth > MaxXMLDepth {
				return fmt.Errorf("%w: nesting deeper than %d", ErrHostileXML, MaxXMLDepth)
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return pskcErr("text outside the root element")
			}
		}
	}
	if roots != 1 || depth != 0 {
		return pskcErr("no root element")
	}
	return nil
}

// syntaxErr keeps the line of an XML error but drops its text, which can
// quote the document.
func syntaxErr(err error) error {
	if errors.Is(err, ErrHostileXML) || errors.Is(err, ErrInvalidPSKC) {
		return err
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: xml syntax error on line %d", ErrInvalidPSKC, se.Line)
	}
	return pskcErr("xml is not well formed")
}

// pskcKeys are the document's decryption and MAC keys.
type pskcKeys struct {
	enc    []byte
	mac    []byte
	macNew func() hash.Hash
}

func (k *pskcKeys) wipe() {
	clear(k.enc)
	clear(k.mac)
}

func macHash(uri string) func() hash.Hash {
	_, name, _ := strings.Cut(uri, "#")
	switch name {
	case "hmac-sha1":
		return sha1.New
	case "hmac-sha256":
		return sha256.New
	case "hmac-sha512":
		return sha512.New
	}
	return nil
}

func aesKeyLen(uri string) int {
	switch uri {
	case xencAES128:
		return 16
	case xencAES192:
		return 24
	case xencAES256:
		return 32
	}
	return 0
}

func (c *pskcContainer) keys(opts PSKCOptions) (*pskcKeys, error) {
	k := &pskcKeys{}
	if c.EncryptionKey == nil {
		if c.MACMethod != nil {
			return nil, pskcErr("MACMethod without EncryptionKey")
		}
		return k, nil
	}
	// The key length is that of the first AES-CBC method in the document.
	keyLen := 16
	if c.MACMethod != nil && c.MACMethod.MACKey != nil {
		if n := aesKeyLen(c.MACMethod.MACKey.EncryptionMethod.Algorithm); n > 0 {
			keyLen = n
		}
	} else {
		for _, p := range c.KeyPackages {
			for _, key := range p.Keys {
				if s := key.Data.Secret; s != nil && s.EncryptedValue != nil {
					if n := aesKeyLen(s.EncryptedValue.EncryptionMethod.Algorithm); n > 0 {
						keyLen = n
					}
				}
			}
		}
	}
	switch ek := c.EncryptionKey; {
	case ek.DerivedKey != nil:
		if opts.Password == "" {
			return nil, fmt.Errorf("%w: document needs a password", ErrPSKCKey)
		}
		maxIter := opts.MaxIterations
		if maxIter <= 0 {
			maxIter = DefaultMaxPBKDF2Iterations
		}
		key, err := derive(ek.DerivedKey, opts.Password, keyLen, maxIter)
		if err != nil {
			return nil, err
		}
		k.enc = key
	case ek.KeyName != nil:
		if len(opts.PreSharedKey) == 0 {
			return nil, fmt.Errorf("%w: document needs a pre-shared key", ErrPSKCKey)
		}
		if len(opts.PreSharedKey) != keyLen {
			return nil, fmt.Errorf("%w: pre-shared key must be %d bytes", ErrPSKCKey, keyLen)
		}
		k.enc = bytes.Clone(opts.PreSharedKey)
	default:
		return nil, pskcErr("EncryptionKey must be a KeyName or a DerivedKey")
	}
	if c.MACMethod != nil {
		k.macNew = macHash(c.MACMethod.Algorithm)
		if k.macNew == nil {
			return nil, pskcErr("unsupported MACMethod")
		}
		if c.MACMethod.MACKey == nil {
			return nil, pskcErr("MACMethod without MACKey")
		}
		mk, err := decryptCBC(k.enc, c.MACMethod.MACKey)
		if err != nil || len(mk) < 16 {
			return nil, fmt.Errorf("%w: cannot decrypt the MAC key", ErrPSKCKey)
		}
		k.mac = mk
	}
	return k, nil
}

func derive(dk *pskcDerivedKey, password string, keyLen, maxIter int) ([]byte, error) {
	m := dk.Method
	if (m.Algorithm != pbkdf2URI && m.Algorithm != pbkdf2URI11) || m.Params == nil {
		return nil, pskcErr("key derivation must be PBKDF2")
	}
	p := m.Params
	if p.Salt.Specified == nil {
		return nil, pskcErr("PBKDF2 salt missing")
	}
	salt, err := decodeB64(*p.Salt.Specified)
	if err != nil || len(salt) == 0 {
		return nil, pskcErr("PBKDF2 salt is not base64")
	}
	iter, err := strconv.Atoi(strings.TrimSpace(p.IterationCount))
	if err != nil || iter < 1 || iter > maxIter {
		return nil, pskcErr("PBKDF2 iteration count out of range")
	}
	if s := strings.TrimSpace(p.KeyLength); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n != keyLen {
			return nil, pskcErr("PBKDF2 key length does not fit the encryption method")
		}
	}
	prf := sha1.New
	if p.PRF.Algorithm != "" {
		if prf = macHash(p.PRF.Algorithm); prf == nil {
			return nil, pskcErr("unsupported PBKDF2 PRF")
		}
	}
	key, err := pbkdf2.Key(prf, password, salt, iter, keyLen)
	if err != nil {
		return nil, pskcErr("PBKDF2 failed")
	}
	return key, nil
}

// decodeB64 decodes base64 text with XML whitespace anywhere.
func decodeB64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

// decryptCBC decrypts an xmlenc AES-CBC value (IV || ciphertext) and removes
// its padding (XML Encryption: the last byte counts the padding bytes).
func decryptCBC(key []byte, e *pskcEncrypted) ([]byte, error) {
	if aesKeyLen(e.EncryptionMethod.Algorithm) != len(key) {
		return nil, errors.New(reasonEncMethod)
	}
	raw, err := decodeB64(e.CipherValue)
	if err != nil {
		return nil, err
	}
	return cbcOpen(key, raw)
}

func cbcOpen(key, raw []byte) ([]byte, error) {
	if len(raw) < 2*aes.BlockSize || len(raw)%aes.BlockSize != 0 {
		return nil, errors.New(reasonDecrypt)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(raw)-aes.BlockSize)
	cipher.NewCBCDecrypter(block, raw[:aes.BlockSize]).CryptBlocks(out, raw[aes.BlockSize:])
	pad := int(out[len(out)-1])
	if pad < 1 || pad > aes.BlockSize {
		clear(out)
		return nil, errors.New(reasonDecrypt)
	}
	return out[:len(out)-pad], nil
}

// token turns one KeyPackage into a token, or the reason it is rejected.
func (k *pskcKeys) token(p *pskcKeyPackage) (Token, string) {
	tok := Token{Serial: strings.TrimSpace(p.SerialNo)}
	if !validSerial(tok.Serial) {
		return tok, reasonBadSerial
	}
	if len(p.Keys) != 1 {
		return tok, reasonKeyCount
	}
	key := &p.Keys[0]
	switch key.Algorithm {
	case pskcTOTP:
		tok.Type = TypeTOTP
	case pskcHOTP:
		tok.Type = TypeHOTP
	default:
		return tok, reasonKeyAlgorithm
	}
	if pp := key.Policy.PINPolicy; pp != nil {
		switch pp.PINUsageMode {
		case "", "Local":
		default:
			return tok, reasonPIN
		}
	}
	if s := strings.TrimSpace(key.Params.Suite); s != "" {
		a, err := ParseAlgorithm(s)
		if err != nil {
			return tok, reasonBadAlgorithm
		}
		tok.Algorithm = a
	}
	tok.Digits = DefaultDigits
	if rf := key.Params.ResponseFormat; rf != nil {
		if rf.Encoding != "" && rf.Encoding != "DECIMAL" {
			return tok, reasonBadEncoding
		}
		switch rf.Length {
		case "6":
			tok.Digits = 6
		case "8":
			tok.Digits = 8
		default:
			return tok, reasonBadDigits
		}
	}
	tok.Period = DefaultPeriod
	if ti := key.Data.TimeInterval; ti != nil {
		if ti.PlainValue == nil {
			return tok, reasonEncryptedParam
		}
		switch strings.TrimSpace(*ti.PlainValue) {
		case "30":
		case "60":
			tok.Period = 2 * DefaultPeriod
		default:
			return tok, reasonBadPeriod
		}
	}
	if c := key.Data.Counter; c != nil && tok.Type == TypeHOTP {
		if c.PlainValue == nil {
			return tok, reasonEncryptedParam
		}
		n, err := strconv.ParseUint(strings.TrimSpace(*c.PlainValue), 10, 64)
		if err != nil {
			return tok, reasonBadCounter
		}
		tok.Counter = n
	}
	sec, reason := k.secret(key.Data.Secret)
	if reason != "" {
		return tok, reason
	}
	if r := checkSecretLen(sec); r != "" {
		clear(sec)
		return tok, r
	}
	tok.Secret = sec
	return tok, ""
}

func (k *pskcKeys) secret(v *pskcValue) (Secret, string) {
	switch {
	case v == nil:
		return nil, reasonNoSecret
	case v.EncryptedValue != nil:
		if k.enc == nil {
			return nil, reasonNoEncKey
		}
		if aesKeyLen(v.EncryptedValue.EncryptionMethod.Algorithm) != len(k.enc) {
			return nil, reasonEncMethod
		}
		raw, err := decodeB64(v.EncryptedValue.CipherValue)
		if err != nil {
			return nil, reasonDecrypt
		}
		if v.ValueMAC == nil || k.mac == nil {
			return nil, reasonNoMAC
		}
		want, err := decodeB64(*v.ValueMAC)
		if err != nil {
			return nil, reasonBadMAC
		}
		m := hmac.New(k.macNew, k.mac)
		m.Write(raw)
		if !hmac.Equal(m.Sum(nil), want) {
			return nil, reasonBadMAC
		}
		pt, err := cbcOpen(k.enc, raw)
		if err != nil {
			return nil, reasonDecrypt
		}
		return pt, ""
	case v.PlainValue != nil:
		b, err := decodeB64(*v.PlainValue)
		if err != nil {
			return nil, reasonBadSecret64
		}
		return b, ""
	}
	return nil, reasonNoSecret
}
