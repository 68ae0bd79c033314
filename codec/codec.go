// Package codec encrypts every Temporal payload mfaflow writes (workflow and
// activity arguments and results, update arguments, query results) with
// AES-256-GCM from the same key ring as device secrets, so names, ID
// numbers and codes are never readable in workflow history. Search
// attributes are not payloads and never hold PII. Handler serves the codec
// to the Temporal Web UI as a codec server.
package codec

import (
	"errors"
	"fmt"
	"net/http"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/mfaflow/mfaflow/mfa"
)

// Metadata of an encrypted payload.
const (
	// Encoding marks an encrypted payload.
	Encoding = "binary/mfaflow-encrypted"
	// MetadataKeyID names the key that sealed the payload.
	MetadataKeyID = "mfaflow-key-id"
)

// aad binds the ciphertext to its use, so a sealed device secret cannot be
// passed off as a payload or the other way round.
var aad = []byte("mfaflow/temporal-payload/v1")

// ErrDecode means a payload could not be decrypted: a missing key or a
// tampered payload.
var ErrDecode = errors.New("codec: cannot decrypt payload")

// Codec encrypts and decrypts payloads.
type Codec struct {
	Keys *mfa.Keyring
}

// Encode encrypts each payload (its metadata and data) with the current key.
func (c Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := p.Marshal()
		if err != nil {
			return nil, fmt.Errorf("codec: marshal payload: %w", err)
		}
		s, err := c.Keys.Seal(plain, aad)
		if err != nil {
			return nil, fmt.Errorf("codec: seal: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(s.KeyID),
			},
			Data: s.Ciphertext,
		}
	}
	return out, nil
}

// Decode decrypts encrypted payloads and passes others through unchanged.
// It returns ErrDecode when a payload does not open.
func (c Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		plain, err := c.Keys.Open(mfa.Sealed{KeyID: string(p.GetMetadata()[MetadataKeyID]), Ciphertext: p.GetData()}, aad)
		if err != nil {
			return nil, ErrDecode
		}
		dp := &commonpb.Payload{}
		if err := dp.Unmarshal(plain); err != nil {
			return nil, ErrDecode
		}
		out[i] = dp
	}
	return out, nil
}

// DataConverter is the default converter with every payload encrypted. Pass
// it as client.Options.DataConverter in the API, the worker and tests.
func DataConverter(keys *mfa.Keyring) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), Codec{Keys: keys})
}

// Handler serves /encode and /decode for the Temporal Web UI's codec server
// setting. Put it behind authentication: it decrypts history for its caller.
func Handler(keys *mfa.Keyring) http.Handler {
	return converter.NewPayloadCodecHTTPHandler(Codec{Keys: keys})
}

// FailureConverter encodes failure messages, stack traces and details
// through the encrypting converter, so history holds no plain failure text.
func FailureConverter(keys *mfa.Keyring) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          DataConverter(keys),
		EncodeCommonAttributes: true,
	})
}

// ClientOptions sets both converters on o.
func ClientOptions(keys *mfa.Keyring, o client.Options) client.Options {
	o.DataConverter = DataConverter(keys)
	o.FailureConverter = FailureConverter(keys)
	return o
}
