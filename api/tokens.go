package api

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// maxImportBody caps a token import file.
const maxImportBody = 10 << 20

// handleImportTokens imports a PSKC (application/pskc+xml) or CSV (text/csv)
// file into the token inventory, all or nothing. Entries that are not cards
// (PSKC PIN keys) are listed as skipped, with row, serial and reason like
// the rejected ones.
func (s *Server) handleImportTokens() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.Keys == nil {
			fail(c, s.log, errors.New("api: no key ring configured"))
			return
		}
		opts := inventory.Options{Actor: actor(c), MaxBytes: maxImportBody}
		mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
		switch mt {
		case "application/pskc+xml":
			opts.Format = inventory.PSKC
		case "text/csv":
			opts.Format = inventory.CSV
		default:
			fail(c, s.log, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/pskc+xml or text/csv"))
			return
		}
		if k := c.GetHeader("X-PSKC-Key"); k != "" {
			key, err := decodeKey(k)
			if err != nil {
				fail(c, s.log, &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "X-PSKC-Key", Message: "give the pre-shared key as hex or base64 (16, 24 or 32 bytes)"})
				return
			}
			opts.PreSharedKey = key
		}
		opts.Password = c.GetHeader("X-PSKC-Password")
		if c.Request.ContentLength > maxImportBody {
			fail(c, s.log, errorf(http.StatusRequestEntityTooLarge, "too_large", "import files are limited to %d bytes", maxImportBody))
			return
		}
		im := inventory.Importer{Store: s.deps.Store, Keys: s.deps.Keys, Now: s.deps.Now}
		res, err := im.Import(c.Request.Context(), http.MaxBytesReader(c.Writer, c.Request.Body, maxImportBody+1), opts)
		switch {
		case err == nil:
			c.JSON(http.StatusCreated, res)
		case errors.Is(err, inventory.ErrRejected):
			out := gin.H{
				"error":    errorBody(c, &Error{Status: http.StatusUnprocessableEntity, Code: "import_rejected", Message: "entries were refused; nothing was imported"}),
				"batch_id": res.BatchID, "rejected": res.Rejected,
			}
			if len(res.Skipped) > 0 {
				out["skipped"] = res.Skipped
			}
			c.AbortWithStatusJSON(http.StatusUnprocessableEntity, out)
		case errors.Is(err, mfa.ErrTooLarge):
			fail(c, s.log, errorf(http.StatusRequestEntityTooLarge, "too_large", "import files are limited to %d bytes", maxImportBody))
		case errors.Is(err, mfa.ErrHostileXML):
			fail(c, s.log, errorf(http.StatusBadRequest, "hostile_xml", "the document uses DTDs or entities, which are refused"))
		case errors.Is(err, mfa.ErrPSKCKey):
			fail(c, s.log, errorf(http.StatusUnprocessableEntity, "pskc_key", "the PSKC key or password is missing or wrong, or the MAC does not match"))
		case errors.Is(err, mfa.ErrInvalidPSKC), errors.Is(err, mfa.ErrInvalidCSV):
			fail(c, s.log, errorf(http.StatusBadRequest, "invalid_file", "%s", strings.TrimPrefix(err.Error(), "mfa: ")))
		default:
			fail(c, s.log, err)
		}
	}
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && validKeyLen(len(b)) {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && validKeyLen(len(b)) {
			return b, nil
		}
	}
	return nil, errors.New("bad key")
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// handleDemoTokenCode shows a demo card's current code, as if reading the
// card. Dev only, and only for the demo batch.
func (s *Server) handleDemoTokenCode() gin.HandlerFunc {
	return func(c *gin.Context) {
		t, err := s.deps.Store.GetToken(c.Request.Context(), c.Param("serial"))
		if err == nil && t.BatchID != DemoBatchID {
			err = store.ErrNotFound
		}
		if err != nil {
			fail(c, s.log, err)
			return
		}
		now := s.deps.Now()
		code, err := inventory.CurrentCode(s.deps.Keys, t, now)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		period := time.Duration(t.PeriodSeconds) * time.Second
		next := now.Truncate(period).Add(period)
		c.JSON(http.StatusOK, gin.H{"serial": t.Serial, "code": code, "valid_until": next.UTC()})
	}
}

// DemoBatchID is the batch the dev stack imports on first start.
const DemoBatchID = "dev-demo"
