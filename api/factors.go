package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/mfa"
)

// proofBody is the step-up proof of a factor change (SPEC §6a): a code of
// an active device or one of the account's recovery codes.
type proofBody struct {
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
}

// stepUpProof checks the shape of a proof given as the body's "proof" or,
// for device removal and protection changes, as their older "code" field,
// before it costs anything. An absent proof is no error here: StepUp
// decides whether the account needs one.
func stepUpProof(legacyCode string, p *proofBody) (console.Proof, error) {
	var out console.Proof
	if p != nil {
		if p.Code != "" && p.RecoveryCode != "" {
			return out, invalidField("proof", "give either a code or a recovery_code, not both")
		}
		if legacyCode != "" && (p.Code != "" || p.RecoveryCode != "") {
			return out, invalidField("code", "give the code either as code or inside proof, not both")
		}
		out = console.Proof{Code: p.Code, RecoveryCode: p.RecoveryCode}
	}
	if legacyCode != "" {
		out.Code = legacyCode
		if err := checkCode("code", out.Code); err != nil {
			return out, err
		}
	} else if out.Code != "" {
		if err := checkCode("proof.code", out.Code); err != nil {
			return out, err
		}
	}
	if out.RecoveryCode != "" {
		if _, err := mfa.NormalizeRecoveryCode(out.RecoveryCode); err != nil {
			return out, invalidField("proof.recovery_code", "a recovery code is 10 letters and digits, such as 7KQ4M-X2PRD")
		}
	}
	return out, nil
}

func (s *Server) handleRegenerateRecoveryCodes() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		var req struct {
			Proof *proofBody `json:"proof"`
		}
		if !s.decode(c, &req) {
			return
		}
		proof, err := stepUpProof("", req.Proof)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		codes, err := s.deps.ConsoleService.RegenerateRecoveryCodes(c.Request.Context(), caller(c), accountID, proof)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusCreated, gin.H{"recovery_codes": codes, "recovery_codes_remaining": len(codes)})
	}
}
