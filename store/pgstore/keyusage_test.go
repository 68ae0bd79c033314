package pgstore_test

import (
	"testing"

	"github.com/mfaflow/mfaflow/store/storetest"
)

func TestKeyUsageContract(t *testing.T) {
	storetest.RunKeyUsage(t, func(t *testing.T) storetest.KeyUsage { return storetest.Postgres(t) })
}
