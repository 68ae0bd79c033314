// Package mfa does every one-time-code check in mfaflow: TOTP/HOTP generation
// and verification (RFC 4226, RFC 6238) that reports the matched time step so
// a code is accepted once, two-consecutive-code binding and resync, a failure
// budget shared by every endpoint that takes a code, SMS verification codes,
// AES-256-GCM sealing of device secrets with a rotating key ring, otpauth URIs
// and QR codes, and hardware token import from CSV and PSKC (RFC 6030).
//
// The package imports nothing of the rest of the project. Storage is reached
// through the small interfaces it declares (StepStore, BudgetStore).
//
// No secret, seed or code ever appears in an error, a log value or the printed
// form of a value of this package: Secret, Sealed and Keyring redact themselves.
package mfa
