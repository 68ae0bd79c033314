package web_test

import (
	"testing"

	"github.com/mfaflow/mfaflow/internal/harness"
)

// TestMain stops the harness's servers (MinIO) after the tests.
func TestMain(m *testing.M) { harness.Main(m) }
