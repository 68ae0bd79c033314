package harness

// ModuleRoot returns the directory that holds mfaflow's go.mod, found from
// the directory the test binary started in. Binaries the tests build once
// and reuse live in its bin folder (git-ignored).
func ModuleRoot() (string, error) { return moduleRoot() }

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) { return freePort() }
