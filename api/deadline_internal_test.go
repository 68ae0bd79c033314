package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// slowReader yields n bytes in chunks of chunk, one every every.
type slowReader struct {
	n, chunk int
	every    time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.every)
	k := min(r.chunk, r.n, len(p))
	for i := range k {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

// TestBodyDeadline: with the production server's timeouts on a real
// listener, a body the size of the cap sent at a modest rate (slower than
// ReadTimeout would allow for it) arrives whole, and one trickled far
// below the rate is cut at the deadline.
func TestBodyDeadline(t *testing.T) {
	t.Parallel()
	const max = 256 << 10
	s := &Server{deps: Deps{UploadRate: 64 << 10, UploadGrace: time.Second}, engine: gin.New()} // 256 KiB: 5 s
	s.engine.PUT("/upload", s.bodyDeadline(func() int64 { return max }), func(c *gin.Context) {
		n, err := io.Copy(io.Discard, c.Request.Body)
		if err != nil {
			c.String(http.StatusBadRequest, "cut after %d bytes", n)
			return
		}
		c.String(http.StatusCreated, "%d", n)
	})
	srv := NewHTTPServer(s.engine)
	srv.ReadTimeout = 500 * time.Millisecond // alone it would cut the slow upload below
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + ln.Addr().String() + "/upload"

	put := func(body io.Reader, size int64) (int, string, time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error(), time.Since(start)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), time.Since(start)
	}

	t.Run("modest rate passes", func(t *testing.T) {
		t.Parallel()
		// 256 KiB at about 128 KiB/s: 2 s, four times ReadTimeout.
		status, body, took := put(&slowReader{n: max, chunk: 16 << 10, every: 125 * time.Millisecond}, max)
		if status != http.StatusCreated || body != fmt.Sprint(max) {
			t.Fatalf("status %d, body %q after %v; want 201 with the whole body", status, body, took)
		}
	})
	t.Run("trickle is cut", func(t *testing.T) {
		t.Parallel()
		// 256 KiB at 8 KiB/s would take 32 s; the deadline is 5 s.
		status, body, took := put(&slowReader{n: max, chunk: 1 << 10, every: 125 * time.Millisecond}, max)
		if took > 15*time.Second {
			t.Fatalf("answered after %v, want about the 5 s deadline", took)
		}
		if status == http.StatusCreated {
			t.Fatalf("status 201 (%s): the trickled body was read whole", body)
		}
	})
	t.Run("a short declared length gets a shorter deadline", func(t *testing.T) {
		t.Parallel()
		if d, want := s.uploadTime(max, 64<<10), 2*time.Second; d != want {
			t.Errorf("uploadTime(256 KiB cap, 64 KiB declared) = %v, want %v", d, want)
		}
		if d, want := s.uploadTime(max, -1), 5*time.Second; d != want {
			t.Errorf("uploadTime(256 KiB cap, undeclared) = %v, want %v", d, want)
		}
		d := (&Server{}).uploadTime(10<<20, -1)
		if want := 30*time.Second + 320*time.Second; d != want {
			t.Errorf("default uploadTime(10 MiB) = %v, want %v", d, want)
		}
	})
}

// TestAnswerDeadline: a document answer larger than the socket buffers,
// read at a modest rate, arrives whole past WriteTimeout on a route with
// answerDeadline, and is cut on one without it.
func TestAnswerDeadline(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	s := &Server{deps: Deps{UploadRate: 1 << 20, UploadGrace: time.Second}, engine: gin.New()} // 16 MiB: 17 s
	doc := func(c *gin.Context) { c.Data(http.StatusOK, "application/octet-stream", make([]byte, size)) }
	s.engine.GET("/document", s.answerDeadline(func() int64 { return size }), doc)
	s.engine.GET("/plain", doc)
	srv := NewHTTPServer(s.engine)
	srv.WriteTimeout = 500 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })

	get := func(path string) (int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var n int64
		buf := make([]byte, 256<<10)
		for { // about 4 MiB/s: 4 s for the document
			k, err := resp.Body.Read(buf)
			n += int64(k)
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			time.Sleep(60 * time.Millisecond)
		}
	}
	if n, err := get("/document"); err != nil || n != size {
		t.Errorf("with answerDeadline: read %d bytes, err %v; want all %d", n, err, size)
	}
	if n, err := get("/plain"); err == nil && n == size {
		t.Errorf("without answerDeadline the slow read got all %d bytes: the test does not reach WriteTimeout", n)
	}
}
