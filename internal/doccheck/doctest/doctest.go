// Package doctest makes documents that pass the doccheck checks, of about
// a wanted size, for tests of the upload path.
package doctest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

func picture(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(40 + 200*x/w), G: uint8(90 + 120*y/h), B: 200, A: 255})
		}
	}
	return img
}

// pad appends random bytes up to n: readers stop at the end marker.
func pad(b []byte, n int) []byte {
	if len(b) >= n {
		return b
	}
	tail := make([]byte, n-len(b))
	_, _ = rand.Read(tail)
	return append(b, tail...)
}

// JPEG returns a real 64×48 JPEG followed by random bytes up to n bytes.
func JPEG(n int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, picture(64, 48), nil); err != nil {
		panic(err)
	}
	return pad(buf.Bytes(), n)
}

// JPEGHeader returns the start of a real 64×48 JPEG, through its scan
// header (image.DecodeConfig reads that far when there is no JFIF segment):
// what a stream that goes on with other bytes needs to begin with.
func JPEGHeader() []byte {
	b := JPEG(0)
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			break
		}
		marker := b[i+1]
		size := int(b[i+2])<<8 | int(b[i+3])
		i += 2 + size
		if marker == 0xDA {
			return b[:i]
		}
	}
	return b
}

// PNG returns a real 64×48 PNG followed by random bytes up to n bytes.
func PNG(n int) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, picture(64, 48)); err != nil {
		panic(err)
	}
	return pad(buf.Bytes(), n)
}

// PDF returns a well-formed one-page PDF of at least n bytes, with no
// active content: the page shows an image XObject of random bytes.
func PDF(n int) []byte {
	const w, h = 64, 48
	data := make([]byte, max(n-700, w*h*3))
	_, _ = rand.Read(data)
	const content = "q 612 0 0 792 0 0 cm /Im1 Do Q"
	return Build(
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>",
		Stream(fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Length %d >>", w, h, len(data)), data),
		Stream(fmt.Sprintf("<< /Length %d >>", len(content)), []byte(content)),
	)
}

// Stream returns the text of a stream object: dict, then data.
func Stream(dict string, data []byte) string {
	return dict + "\nstream\n" + string(data) + "\nendstream"
}

// Build returns a PDF whose objects 1, 2, … are objs (object 1 the
// catalog), with a cross-reference table and a trailer.
func Build(objs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
