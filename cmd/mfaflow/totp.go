package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
)

// runTOTP prints the authenticator app's code for a base32 secret (the
// "secret" a virtual binding shows), for demos and scripts without a phone:
// the current code, two consecutive codes (-pair: the previous step's and the
// current one, what a binding's confirm takes) or the next step's (-next).
// It reads nothing but its argument. The secret is on the command line, so
// it is for demo secrets only.
func runTOTP(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("totp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pair := fs.Bool("pair", false, "print two consecutive codes, the previous step's and the current one, separated by a space")
	next := fs.Bool("next", false, "print the next step's code (accepted as the clock's skew of one step)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mfaflow totp [-pair | -next] SECRET   (SHA1, 6 digits, 30 s: what the dev stack's virtual devices use)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("totp: give one base32 secret")
	}
	if *pair && *next {
		return errors.New("totp: -pair or -next, not both")
	}
	secret, err := mfa.DecodeSecret(strings.TrimSpace(fs.Arg(0)))
	if err != nil {
		return errors.New("totp: the secret is not base32")
	}
	now := time.Now()
	switch {
	case *pair:
		fmt.Fprintln(stdout, mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}), mfa.TOTP(secret, now, mfa.Params{}))
	case *next:
		fmt.Fprintln(stdout, mfa.TOTP(secret, now.Add(30*time.Second), mfa.Params{}))
	default:
		fmt.Fprintln(stdout, mfa.TOTP(secret, now, mfa.Params{}))
	}
	return nil
}
