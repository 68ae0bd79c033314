package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// wrapPages mounts a web handler (the pages, the dev console, /static/…)
// under the error contract: an HTML answer, a page's own error page
// included, passes as it is, since a browser shows it; any other refusal
// the handler writes (http.FileServer's and http.NotFound's text/plain
// "404 page not found" for an unknown static file, say) becomes the JSON
// error of every route, with its status kept.
func (s *Server) wrapPages(h http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		h.ServeHTTP(&pageWriter{ResponseWriter: c.Writer, c: c, s: s}, c.Request)
	}
}

// pageWriter replaces a non-HTML error answer with the JSON error.
type pageWriter struct {
	http.ResponseWriter
	c        *gin.Context
	s        *Server
	replaced bool
}

func (w *pageWriter) WriteHeader(status int) {
	if status < 400 || strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.replaced = true
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Type")
	code, msg := "invalid_request", "the request is not valid"
	switch status {
	case http.StatusNotFound:
		code, msg = "not_found", "no such page or file"
	case http.StatusMethodNotAllowed:
		code, msg = "method_not_allowed", "method not allowed on this route"
	}
	if status >= 500 {
		code, msg = "internal", "internal error"
	}
	fail(w.c, w.s.log, errorf(status, code, "%s", msg))
}

func (w *pageWriter) Write(p []byte) (int, error) {
	if w.replaced {
		return len(p), nil // the JSON error is written; the plain text is dropped
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *pageWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
