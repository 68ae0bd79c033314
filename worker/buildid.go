package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"runtime/debug"
	"sync"
)

// DefaultBuildID is the build id of a worker started without
// MFAFLOW_BUILD_ID: the VCS revision the binary was built from; when the
// tree had changes, "-dirty-" and the start of the executable's SHA-256
// follow, since two dirty builds of one revision are different code. A binary built without VCS
// information (go test, -buildvcs=false, a source tree without .git) gets
// "exe-" and the start of its executable's SHA-256, so two different
// builds never share an id and the same binary always has the same one;
// "dev" only when the executable cannot be read.
func DefaultBuildID() string {
	buildIDOnce.Do(func() { buildID = defaultBuildID(debug.ReadBuildInfo, os.Executable) })
	return buildID
}

var (
	buildIDOnce sync.Once
	buildID     string
)

func defaultBuildID(info func() (*debug.BuildInfo, bool), exe func() (string, error)) string {
	if bi, ok := info(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" && modified != "true" {
			return rev
		}
		if rev != "" {
			if sum := exeSum(exe); sum != "" {
				return rev + "-dirty-" + sum[:12]
			}
			return rev + "-dirty"
		}
	}
	if sum := exeSum(exe); sum != "" {
		return "exe-" + sum[:16]
	}
	return "dev"
}

// exeSum is the hex SHA-256 of the running executable, or "".
func exeSum(exe func() (string, error)) string {
	path, err := exe()
	if err != nil {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}
