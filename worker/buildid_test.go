package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"go.temporal.io/sdk/workflow"
)

// TestDefaultBuildID: the VCS revision of a clean build; of a dirty one,
// the revision and the executable's hash; of a build without VCS
// information, the executable's hash; "dev" only when nothing is known.
func TestDefaultBuildID(t *testing.T) {
	exePath := filepath.Join(t.TempDir(), "mfaflow")
	if err := os.WriteFile(exePath, []byte("a build of mfaflow"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a build of mfaflow"))
	hexSum := hex.EncodeToString(sum[:])
	exe := func() (string, error) { return exePath, nil }
	noExe := func() (string, error) { return "", errors.New("no executable") }
	info := func(settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Settings: settings}, true }
	}
	const rev = "50f187a0c1d2e3f405162738495a6b7c8d9e0f1a"
	for _, c := range []struct {
		name string
		info func() (*debug.BuildInfo, bool)
		exe  func() (string, error)
		want string
	}{
		{"clean", info(debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}), exe, rev},
		{"dirty", info(debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), exe, rev + "-dirty-" + hexSum[:12]},
		{"dirty, executable unreadable", info(debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), noExe, rev + "-dirty"},
		{"no VCS information", info(), exe, "exe-" + hexSum[:16]},
		{"no build information", func() (*debug.BuildInfo, bool) { return nil, false }, exe, "exe-" + hexSum[:16]},
		{"nothing known", info(), noExe, "dev"},
	} {
		if got := defaultBuildID(c.info, c.exe); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	// What the running test binary gets is a valid MFAFLOW_BUILD_ID.
	if id := DefaultBuildID(); id == "" || len(id) > 128 || id != DefaultBuildID() {
		t.Errorf("DefaultBuildID() = %q, not one stable id", id)
	}
}

// TestOptions: a worker of a build is versioned, in the deployment
// mfaflow, pinned unless a workflow is registered otherwise.
func TestOptions(t *testing.T) {
	d := Options("b1").DeploymentOptions
	if !d.UseVersioning || d.Version.DeploymentName != DeploymentName || DeploymentName != "mfaflow" || d.Version.BuildID != "b1" ||
		d.DefaultVersioningBehavior != workflow.VersioningBehaviorPinned {
		t.Errorf("Options(b1).DeploymentOptions = %+v", d)
	}
}
