package faulttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

// TestMinIOStoppedDuringUpload stops MinIO while a large document streams
// in slowly: the applicant gets 503 and the appeal records no document;
// with MinIO back the same upload succeeds and the appeal is submitted.
func TestMinIOStoppedDuringUpload(t *testing.T) {
	const (
		size        = 4 << 20
		chunk       = 64 << 10
		pause       = 40 * time.Millisecond // about 3.5 s for the whole body
		stopAfter   = 1 << 20
		answerBound = 30 * time.Second
	)
	testStart := time.Now()
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.SQLite(t)
	m := harness.MinIOServer(t)
	// Leave MinIO running for the next test whatever happens here.
	t.Cleanup(func() { m.Start(t) })
	bucket := m.Bucket(t)
	blobs, err := blob.Open(context.Background(), blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: bucket, Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := temporalharness.StartEncrypted(t, keys)
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) {
		worker.Register(r, &activities.Activities{Store: st, Notifier: notify.Outbox{Store: st}, Keys: keys, Blobs: blobs})
	}, sdkworker.Options{})
	c := startAPI(t, apiDeps{st: st, tc: ts.GetDefaultClient(), docs: blobs, keys: keys})
	c.http.Timeout = time.Minute

	const acct, phone, qq = "ft-minio", "13800400001", "660001"
	putAccount(t, st, acct, phone, qq)
	bindDevice(t, st, keys, acct)
	code, out := c.call(http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, qq))
	if code != http.StatusCreated {
		t.Fatalf("file = %d %v", code, out)
	}
	id, token := out["appeal_id"].(string), out["access_token"].(string)
	docPath := "/v1/appeals/" + id + "/documents/id_holding_photo"
	t.Logf("stack up and appeal filed in %s", time.Since(testStart).Round(time.Millisecond))

	photo := jpeg(size)
	sum := sha256.Sum256(photo)

	// Stream the photo slowly; stop MinIO once stopAfter bytes went out.
	pr, pw := io.Pipe()
	stopped := make(chan time.Time, 1)
	go func() {
		sent := 0
		for sent < len(photo) {
			n := min(chunk, len(photo)-sent)
			if _, err := pw.Write(photo[sent : sent+n]); err != nil {
				return // the server gave up on the body
			}
			if sent < stopAfter && sent+n >= stopAfter {
				m.Stop(t)
				stopped <- time.Now()
			}
			sent += n
			time.Sleep(pause)
		}
		_ = pw.Close()
	}()
	start := time.Now()
	code, out = c.raw(http.MethodPut, docPath, token, "image/jpeg", pr, size)
	answered := time.Now()
	_ = pr.CloseWithError(io.ErrClosedPipe)
	var stopAt time.Time
	select {
	case stopAt = <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatalf("the upload answered %d %v before MinIO was stopped", code, out)
	}
	t.Logf("upload with MinIO stopped midway: %d %v, %s after the start, %s after the stop",
		code, out, answered.Sub(start).Round(time.Millisecond), answered.Sub(stopAt).Round(time.Millisecond))
	if code != http.StatusServiceUnavailable || errCode(out) != "unavailable" {
		t.Errorf("upload with MinIO stopped = %d %v, want 503 unavailable", code, out)
	}
	if d := answered.Sub(stopAt); d > answerBound {
		t.Errorf("the upload answered %s after MinIO stopped, want under %s", d, answerBound)
	}

	// The appeal records no document.
	code, view := c.call(http.MethodGet, "/v1/appeals/"+id, token, nil)
	if code != http.StatusOK || view["status"] != workflows.AppealCollecting {
		t.Fatalf("appeal after the failed upload = %d %v", code, view)
	}
	for _, d := range view["documents"].([]any) {
		if d.(map[string]any)["uploaded"] != false {
			t.Fatalf("a document is recorded after the failed upload: %v", d)
		}
	}
	if code, out := c.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusUnprocessableEntity || errCode(out) != "documents_missing" {
		t.Errorf("submit after the failed upload = %d %v, want 422 documents_missing", code, out)
	}

	restart := time.Now()
	m.Start(t)
	t.Logf("MinIO started again in %s", time.Since(restart).Round(time.Millisecond))

	start = time.Now()
	code, out = c.raw(http.MethodPut, docPath, token, "image/jpeg", bytes.NewReader(photo), size)
	t.Logf("the same upload with MinIO back: %d in %s", code, time.Since(start).Round(time.Millisecond))
	if code != http.StatusCreated || out["sha256"] != hex.EncodeToString(sum[:]) || out["size"] != float64(size) {
		t.Fatalf("upload with MinIO back = %d %v", code, out)
	}
	if code, out := c.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusAccepted || out["status"] != workflows.AppealPending {
		t.Fatalf("submit = %d %v", code, out)
	}
	// One object: the aborted upload left nothing behind.
	keys2, err := blobs.Keys(context.Background(), "appeals/"+id+"/")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys2) != 1 {
		t.Errorf("objects of the appeal: %v, want exactly the one uploaded", keys2)
	}
	t.Logf("total %s", time.Since(testStart).Round(time.Millisecond))
}
