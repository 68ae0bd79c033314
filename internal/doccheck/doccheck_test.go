package doccheck_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfaflow/mfaflow/internal/doccheck"
	"github.com/mfaflow/mfaflow/internal/doccheck/doctest"
)

// page is a catalog, a page tree and a page: objects 1 to 3.
var page = []string{
	"<< /Type /Catalog /Pages 2 0 R >>",
	"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
	"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
}

func withCatalog(catalog string, more ...string) []byte {
	objs := append([]string{catalog}, page[1:]...)
	return doctest.Build(append(objs, more...)...)
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// objStm returns an object stream holding objs as objects 10, 11, …
func objStm(dict string, compress bool, objs ...string) string {
	var head, body strings.Builder
	for i, o := range objs {
		fmt.Fprintf(&head, "%d %d ", 10+i, body.Len())
		body.WriteString(o + "\n")
	}
	data := []byte(head.String() + body.String())
	first := head.Len()
	filter := ""
	if compress {
		data = deflate(data)
		filter = "/Filter /FlateDecode "
	}
	return doctest.Stream(fmt.Sprintf("<< %s/N %d /First %d %s/Length %d >>", dict, len(objs), first, filter, len(data)), data)
}

func TestPDF(t *testing.T) {
	bomb := deflate(make([]byte, doccheck.MaxInflated+1))
	jsAction := "<< /S /JavaScript /JS (app.alert\\(1\\)) >>"
	cases := []struct {
		name string
		pdf  []byte
		want error // nil, ErrUnsafe or ErrMalformed
	}{
		{"one page", doctest.Build(page...), nil},
		{"image page", doctest.PDF(50_000), nil},
		{"string mentioning /JS", doctest.Build(append(page, "<< /Title (how /JS and /Launch work) /Author <2F4A53> >>")...), nil},
		{"open action to a page", withCatalog("<< /Type /Catalog /Pages 2 0 R /OpenAction [3 0 R /Fit] >>"), nil},
		{"stream with its length in another object", doctest.Build(append(page, doctest.Stream("<< /Length 5 0 R >>", []byte("q Q")), "3")...), nil},
		{"clean object stream", doctest.Build(append(page, objStm("/Type /ObjStm ", true, "<< /Producer (test) >>"))...), nil},
		{"trailing white space", append(doctest.Build(page...), "\r\n\x00 "...), nil},
		{"CR line ends", bytes.ReplaceAll(doctest.Build(page...), []byte("\n"), []byte("\r")), nil},

		{"open action JavaScript", withCatalog("<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>", jsAction), doccheck.ErrUnsafe},
		{"page AA JavaScript", doctest.Build(page[0], page[1], "<< /Type /Page /Parent 2 0 R /AA << /O << /S /JavaScript /JS 4 0 R >> >> >>", doctest.Stream("<< /Length 3 >>", []byte("x=1"))), doccheck.ErrUnsafe},
		{"escaped name", withCatalog("<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /J#61va#53cript /J#53 (x) >> >>"), doccheck.ErrUnsafe},
		{"launch action", withCatalog("<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /Launch /F (calc.exe) >> >>"), doccheck.ErrUnsafe},
		{"embedded files", withCatalog("<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 4 0 R >> >>", "<< /Names [] >>"), doccheck.ErrUnsafe},
		{"embedded file stream", doctest.Build(append(page, doctest.Stream("<< /Type /EmbeddedFile /Length 3 >>", []byte("abc")))...), doccheck.ErrUnsafe},
		{"XFA form", withCatalog("<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] /XFA 4 0 R >> >>", "null"), doccheck.ErrUnsafe},
		{"JavaScript in a compressed object stream", doctest.Build(append(page, objStm("/Type /ObjStm ", true, jsAction))...), doccheck.ErrUnsafe},
		{"JavaScript in a plain object stream", doctest.Build(append(page, objStm("/Type /ObjStm ", false, jsAction))...), doccheck.ErrUnsafe},
		{"object stream without its type", doctest.Build(append(page, objStm("", true, "<< /S /Launch >>"))...), doccheck.ErrUnsafe},
		{"escaped name in an object stream", doctest.Build(append(page, objStm("/Type /ObjStm ", true, "<< /S /#4A#61vaScript >>"))...), doccheck.ErrUnsafe},

		{"header and padding only", append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("x"), 100)...), doccheck.ErrMalformed},
		{"no PDF header", []byte("%!PS-Adobe-3.0\n"), doccheck.ErrMalformed},
		{"truncated", doctest.Build(page...)[:200], doccheck.ErrMalformed},
		{"no %%EOF", bytes.TrimSuffix(doctest.Build(page...), []byte("%%EOF\n")), doccheck.ErrMalformed},
		{"junk after %%EOF", append(doctest.Build(page...), "garbage"...), doccheck.ErrMalformed},
		{"encrypted", bytes.Replace(doctest.Build(page...), []byte("/Root 1 0 R"), []byte("/Root 1 0 R /Encrypt 9 0 R"), 1), doccheck.ErrMalformed},
		{"wrong stream length", doctest.Build(append(page, doctest.Stream("<< /Length 2 >>", []byte("q Q")))...), doccheck.ErrMalformed},
		{"object hidden in stream data", doctest.Build(append(page, doctest.Stream("<< /Subtype /Image /Length 36 >>", []byte("7 0 obj << /S /Launch >> endobj    ")))...), doccheck.ErrMalformed},
		{"object stream with LZW", doctest.Build(append(page, "<< /Type /ObjStm /N 1 /First 5 /Filter /LZWDecode /Length 3 >>\nstream\nabc\nendstream")...), doccheck.ErrMalformed},
		{"object stream that does not inflate", doctest.Build(append(page, "<< /Type /ObjStm /N 1 /First 5 /Filter /FlateDecode /Length 3 >>\nstream\nabc\nendstream")...), doccheck.ErrMalformed},
		{"inflation bomb", doctest.Build(append(page, doctest.Stream(fmt.Sprintf("<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>", len(bomb)), bomb))...), doccheck.ErrMalformed},
		{"nested too deeply", doctest.Build(append(page, strings.Repeat("[", 100)+strings.Repeat("]", 100))...), doccheck.ErrMalformed},
		{"unterminated string", doctest.Build(append(page, "(abc")...), doccheck.ErrMalformed},
		{"stray tokens", doctest.Build(append(page, "<< >> foo")...), doccheck.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := doccheck.PDF(bytes.NewReader(c.pdf))
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("PDF = %v, want %v", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "app.alert") {
				t.Fatalf("the error quotes the file: %v", err)
			}
		})
	}
}

// TestPDFFiles checks files written by qpdf from documents of doctest:
// object streams, cross-reference streams and a linearized file, and two
// with JavaScript only inside compressed object streams.
func TestPDFFiles(t *testing.T) {
	cases := map[string]error{
		"objstm-clean.pdf":         nil,
		"linearized-clean.pdf":     nil,
		"objstm-openaction-js.pdf": doccheck.ErrUnsafe,
		"objstm-aa-js.pdf":         doccheck.ErrUnsafe,
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("JavaScript")) {
				t.Fatal("the script is readable without inflating: the file does not test object streams")
			}
			err = doccheck.PDF(bytes.NewReader(b))
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Fatalf("PDF = %v, want %v", err, want)
			}
		})
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestPDFReadError(t *testing.T) {
	boom := errors.New("connection reset")
	err := doccheck.PDF(io.MultiReader(bytes.NewReader(doctest.Build(page...)[:100]), failingReader{boom}))
	if !errors.Is(err, boom) || errors.Is(err, doccheck.ErrMalformed) {
		t.Fatalf("PDF = %v, want the read error", err)
	}
}

// pngHeader returns a PNG signature and an IHDR chunk of w×h.
func pngHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32([]byte("IHDR"), w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

func TestImage(t *testing.T) {
	cases := []struct {
		name, contentType string
		data              []byte
		ok                bool
	}{
		{"jpeg", "image/jpeg", doctest.JPEG(10_000), true},
		{"jpeg header only", "image/jpeg", doctest.JPEGHeader(), true},
		{"png", "image/png", doctest.PNG(10_000), true},
		{"png header", "image/png", pngHeader(1000, 800), true},
		{"largest side", "image/png", pngHeader(doccheck.MaxSide, 10), true},

		{"png signature only", "image/png", []byte("\x89PNG\r\n\x1a\n"), false},
		{"png too wide", "image/png", pngHeader(doccheck.MaxSide+1, 10), false},
		{"png too many pixels", "image/png", pngHeader(15000, 15000), false},
		{"png zero height", "image/png", pngHeader(10, 0), false},
		{"png bad checksum", "image/png", append(pngHeader(10, 10)[:29], 0, 0, 0, 0), false},
		{"jpeg signature and noise", "image/jpeg", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{7}, 1000)...), false},
		{"png labelled jpeg", "image/jpeg", doctest.PNG(0), false},
		{"pdf", "application/pdf", doctest.PDF(0), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := doccheck.Image(bytes.NewReader(c.data), c.contentType)
			if c.ok && err != nil || !c.ok && !errors.Is(err, doccheck.ErrMalformed) {
				t.Fatalf("Image = %v, want ok %v", err, c.ok)
			}
		})
	}
}

// TestImageReadsOnlyTheHeader: Image stops within MaxImageHeader bytes,
// so the caller can stream the rest.
func TestImageReadsOnlyTheHeader(t *testing.T) {
	r := &countingReader{r: io.MultiReader(bytes.NewReader(doctest.JPEGHeader()), zeros{})}
	if _, err := doccheck.Image(r, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	if r.n > doccheck.MaxImageHeader {
		t.Fatalf("read %d bytes", r.n)
	}
	// A header that does not end within the limit is refused.
	big := append([]byte{0xFF, 0xD8}, bytes.Repeat(append([]byte{0xFF, 0xE1, 0xFF, 0xFF}, make([]byte, 0xFFFD)...), 20)...)
	if _, err := doccheck.Image(bytes.NewReader(append(big, doctest.JPEGHeader()[2:]...)), "image/jpeg"); !errors.Is(err, doccheck.ErrMalformed) {
		t.Fatalf("a header past the limit: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func FuzzPDF(f *testing.F) {
	f.Add(doctest.Build(page...))
	f.Add(doctest.Build(append(page, objStm("/Type /ObjStm ", true, "<< /S /JavaScript >>"))...))
	f.Add(doctest.Build(append(page, doctest.Stream("<< /Length 5 0 R >>", []byte("q Q")), "3")...))
	for _, name := range []string{"objstm-clean.pdf", "objstm-aa-js.pdf"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := doccheck.PDF(bytes.NewReader(b))
		if err != nil && !errors.Is(err, doccheck.ErrMalformed) && !errors.Is(err, doccheck.ErrUnsafe) {
			t.Fatalf("PDF = %v: neither malformed nor unsafe", err)
		}
		// Whatever is accepted has no name of active content outside its
		// strings; a plain /JavaScript token must never pass.
		if err == nil && bytes.Contains(b, []byte("/JavaScript ")) && !bytes.Contains(b, []byte("(")) && !bytes.Contains(b, []byte("stream")) {
			t.Fatalf("accepted a file with /JavaScript: %q", b)
		}
	})
}

func FuzzImage(f *testing.F) {
	f.Add(doctest.JPEGHeader(), true)
	f.Add(pngHeader(100, 100), false)
	f.Add([]byte("\x89PNG\r\n\x1a\n"), false)
	f.Fuzz(func(t *testing.T, b []byte, isJPEG bool) {
		ct := "image/png"
		if isJPEG {
			ct = "image/jpeg"
		}
		cfg, err := doccheck.Image(bytes.NewReader(b), ct)
		if err != nil {
			if !errors.Is(err, doccheck.ErrMalformed) {
				t.Fatalf("Image = %v", err)
			}
			return
		}
		if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > doccheck.MaxSide || cfg.Height > doccheck.MaxSide {
			t.Fatalf("accepted %d×%d", cfg.Width, cfg.Height)
		}
	})
}
