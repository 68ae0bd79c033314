package benchsuite

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// The upload figures (SPEC §9): a 10 MiB document through PUT
// /v1/appeals/{id}/documents/{type} against a bare minio-go PutObject of the
// same bytes to the same MinIO bucket, and the peak heap of 10 concurrent
// uploads of 10 MiB against 10 of 1 MiB.
//
// The API upload is the whole product path: the HTTP request over loopback,
// the appeal's token check (PostgreSQL), the appeal's state (a Temporal
// query), the content sniff, blob.Put (SHA-256 while streaming, SSE-S3
// through minio-go) and the AddDocument update. The bare PutObject sends the
// same bytes from a bytes.Reader (as from a file) with the same SSE-S3
// option, and nothing else.

const uploadSize = 10 << 20 // the API's document cap

// BenchmarkUpload10MB alternates API uploads and bare PutObjects of one
// 10 MiB file, after one warm-up of each, and reports each side's mean time
// and throughput.
func BenchmarkUpload10MB(b *testing.B) {
	const runs = 8
	s := newStack(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mc, err := minio.New(s.minio.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.minio.AccessKey, s.minio.SecretKey, "")})
	if err != nil {
		b.Fatal(err)
	}
	id, token, err := s.fileAppeal(ctx, s.seedAppellant(0), 0)
	if err != nil {
		b.Fatal(err)
	}
	file := jpegBytes(uploadSize)
	var api, bare time.Duration
	stop := profileMeasured(b)
	for r := -1; r < runs; r++ {
		t0 := time.Now()
		if err := s.upload(ctx, id, token, bytes.NewReader(file), int64(len(file))); err != nil {
			b.Fatalf("API upload: %v", err)
		}
		t1 := time.Now()
		if _, err := mc.PutObject(ctx, s.bucket, fmt.Sprintf("bare/%d", r), bytes.NewReader(file), int64(len(file)),
			minio.PutObjectOptions{ContentType: "image/jpeg", ServerSideEncryption: encrypt.NewSSE()}); err != nil {
			b.Fatalf("PutObject: %v", err)
		}
		t2 := time.Now()
		if r >= 0 {
			api += t1.Sub(t0)
			bare += t2.Sub(t1)
		}
	}
	stop()
	for _, side := range []struct {
		name string
		d    time.Duration
	}{{"PutObject", bare}, {"API", api}} {
		b.Run(side.name, func(b *testing.B) {
			b.ReportMetric(float64(side.d.Nanoseconds())/runs, "ns/op")
			b.ReportMetric(float64(uploadSize)*runs/side.d.Seconds()/1e6, "MB/s")
		})
	}
}

// BenchmarkUploadPeakMemory uploads 10 documents at once through the API,
// first of 1 MiB each and then of 10 MiB each, streamed from generators so
// the client holds no file, and samples the process's heap every
// millisecond. The process holds the API, the Temporal server and the
// client, so the figure that matters is the growth of the peak over the idle
// heap just before. The GC runs at GOGC=10 during the runs, so the peak
// follows the memory the uploads hold rather than garbage awaiting a cycle.
func BenchmarkUploadPeakMemory(b *testing.B) {
	const concurrent = 10
	s := newStack(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type appeal struct{ id, token string }
	appeals := make([]appeal, concurrent)
	for i := range appeals {
		id, token, err := s.fileAppeal(ctx, s.seedAppellant(i), i)
		if err != nil {
			b.Fatal(err)
		}
		appeals[i] = appeal{id, token}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	type result struct {
		idle, peak uint64
		took       time.Duration
	}
	run := func(size int64) result {
		runtime.GC()
		sampler := newHeapSampler()
		idle := sampler.read()
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, concurrent)
		for _, a := range appeals {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.upload(ctx, a.id, a.token, &jpegReader{size: size}, size); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		took := time.Since(t0)
		peak := sampler.stop()
		close(errs)
		for err := range errs {
			b.Fatalf("upload of %d bytes: %v", size, err)
		}
		return result{idle: idle, peak: peak, took: took}
	}
	run(1 << 20) // warm-up: connections, buffers, code paths
	stop := profileMeasured(b)
	small := run(1 << 20)
	large := run(uploadSize)
	stop()
	for _, r := range []struct {
		name string
		res  result
	}{{"10x1MB", small}, {"10x10MB", large}} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportMetric(float64(r.res.took.Nanoseconds()), "ns/op")
			b.ReportMetric(float64(r.res.peak), "peak-heap-bytes")
			b.ReportMetric(float64(r.res.idle), "idle-heap-bytes")
			b.ReportMetric(float64(r.res.peak-min(r.res.idle, r.res.peak)), "heap-growth-bytes")
		})
	}
}

// heapSampler tracks the peak of the heap's object bytes (live objects and
// garbage not yet swept: HeapAlloc).
type heapSampler struct {
	done chan struct{}
	out  chan uint64
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func newHeapSampler() *heapSampler {
	h := &heapSampler{done: make(chan struct{}), out: make(chan uint64)}
	go func() {
		sample := []metrics.Sample{{Name: heapObjects}}
		var peak uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-h.done:
				h.out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) read() uint64 {
	sample := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

func (h *heapSampler) stop() uint64 {
	close(h.done)
	return <-h.out
}
