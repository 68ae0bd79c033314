// Package doccheck decides whether an uploaded appeal document is a file a
// reviewer may open: a JPEG or PNG whose header decodes to sane dimensions,
// or a PDF that parses and holds no JavaScript, launch action or embedded
// file. Both checks read their input once, as a stream, in memory that does
// not grow with the file.
package doccheck

import (
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // the formats Image accepts
	_ "image/png"
	"io"
)

// Errors of the checks. Callers tell them apart with errors.Is; the wrapped
// text names the reason (for the audit) and never holds the file's bytes.
var (
	// ErrMalformed: the file is not a well-formed JPEG, PNG or PDF, or it
	// cannot be checked (an encrypted PDF, a filter the check cannot undo).
	ErrMalformed = errors.New("doccheck: not a well-formed document")
	// ErrUnsafe: a PDF that parses but holds active content.
	ErrUnsafe = errors.New("doccheck: the document holds active content")
)

// Limits of an image's header.
const (
	// MaxSide is the largest width or height accepted, in pixels.
	MaxSide = 20000
	// MaxPixels is the largest width × height accepted (100 megapixels):
	// a reviewer's browser decodes the whole image.
	MaxPixels = 100_000_000
	// MaxImageHeader is how many bytes Image may read to find the
	// dimensions: a JPEG's metadata segments (EXIF, ICC, XMP) come before
	// its frame header and are each at most 64 KiB.
	MaxImageHeader = 1 << 20
)

func malformed(reason string) error { return fmt.Errorf("%w: %s", ErrMalformed, reason) }

// Image reads the header of a JPEG or PNG from r (at most MaxImageHeader
// bytes) with image.DecodeConfig and returns its configuration. contentType
// is the type sniffed from the content, "image/jpeg" or "image/png"; the
// header must be of that format. It returns ErrMalformed when the header
// does not decode, is of another format, or gives a side outside
// 1..MaxSide or more than MaxPixels pixels. Only the header is read: the
// rest of r is left for the caller.
func Image(r io.Reader, contentType string) (image.Config, error) {
	var want string
	switch contentType {
	case "image/jpeg":
		want = "jpeg"
	case "image/png":
		want = "png"
	default:
		return image.Config{}, malformed("not a JPEG or PNG")
	}
	cfg, format, err := image.DecodeConfig(io.LimitReader(r, MaxImageHeader))
	if err != nil {
		return image.Config{}, malformed("the image header does not decode")
	}
	if format != want {
		return image.Config{}, malformed("the image is not of its sniffed type")
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxSide || cfg.Height > MaxSide ||
		int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return image.Config{}, malformed(fmt.Sprintf("image dimensions %d×%d out of range", cfg.Width, cfg.Height))
	}
	return cfg, nil
}
