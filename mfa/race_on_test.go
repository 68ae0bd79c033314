//go:build race

package mfa

const raceEnabled = true
