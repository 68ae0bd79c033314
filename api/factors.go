package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/mfa"
)

// proofBody is the step-up proof of a factor change (SPEC §6a): a code of
// an active device or one of the account's recovery codes.
type proofBody struct {
	Code         string         `json:"code"`
	RecoveryCode string         `json:"recovery_code"`
	WebAuthn     *assertionBody `json:"webauthn"`
}

// assertionBody answers a WebAuthn challenge: its id and the browser's
// PublicKeyCredential JSON from navigator.credentials.get.
type assertionBody struct {
	ChallengeID string          `json:"challenge_id"`
	Credential  json.RawMessage `json:"credential"`
}

func (a *assertionBody) assertion(field string) (console.WebAuthnAssertion, error) {
	if !idPattern.MatchString(a.ChallengeID) {
		return console.WebAuthnAssertion{}, invalidField(field+".challenge_id", "the challenge_id from POST …/mfa/webauthn/challenge")
	}
	var probe map[string]any
	if len(a.Credential) == 0 || len(a.Credential) > 64<<10 || json.Unmarshal(a.Credential, &probe) != nil {
		return console.WebAuthnAssertion{}, invalidField(field+".credential", "the PublicKeyCredential JSON from navigator.credentials.get")
	}
	return console.WebAuthnAssertion{ChallengeID: a.ChallengeID, Credential: a.Credential}, nil
}

// stepUpProof checks the shape of a proof given as the body's "proof" or,
// for device removal and protection changes, as their older "code" field,
// before it costs anything. An absent proof is no error here: StepUp
// decides whether the account needs one.
func stepUpProof(legacyCode string, p *proofBody) (console.Proof, error) {
	var out console.Proof
	if p != nil {
		n := 0
		for _, given := range []bool{p.Code != "", p.RecoveryCode != "", p.WebAuthn != nil} {
			if given {
				n++
			}
		}
		if n > 1 {
			return out, invalidField("proof", "give one of code, recovery_code or webauthn")
		}
		if p.WebAuthn != nil {
			a, err := p.WebAuthn.assertion("proof.webauthn")
			if err != nil {
				return out, err
			}
			out.WebAuthn = &a
		}
		if legacyCode != "" && n > 0 {
			return out, invalidField("code", "give the code either as code or inside proof, not both")
		}
		out.Code, out.RecoveryCode = p.Code, p.RecoveryCode
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

func (s *Server) handleWebAuthnChallenge() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		var req struct {
			Purpose   string         `json:"purpose"`
			Operation *operationBody `json:"operation"`
		}
		if !s.decode(c, &req) {
			return
		}
		op, err := checkPurpose(req.Purpose, req.Operation, true)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		ch, err := s.deps.ConsoleService.BeginWebAuthn(c.Request.Context(), accountID, req.Purpose, op)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusCreated, gin.H{"challenge_id": ch.ID, "request_options": ch.Options, "expires_at": ch.ExpiresAt.UTC()})
	}
}
