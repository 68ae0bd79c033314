package api

import (
	"github.com/mfaflow/mfaflow/console"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// handleProvisionSecurityCenter creates the account's security-center
// authenticator and returns its key once, for the platform's security app
// to enrol. A second call is refused with 409.
func (s *Server) handleProvisionSecurityCenter() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		if _, err := s.deps.Store.GetAccount(c.Request.Context(), accountID); err != nil {
			fail(c, s.log, err)
			return
		}
		d, secret, err := s.deps.ConsoleService.ProvisionSecurityCenter(c.Request.Context(), accountID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusCreated, gin.H{
			"device_id": d.ID, "secret": mfa.EncodeSecret(secret),
			"otpauth_uri": mfa.KeyURI(s.issuer()+" Security Center", accountID, secret, mfa.Params{}),
		})
	}
}

// handleUnlock clears an account's failure budget and any MFA lock on it
// (admin); audited and the owner told.
func (s *Server) handleUnlock() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		err := s.deps.ConsoleService.Unlock(c.Request.Context(), console.Caller{Actor: actor(c), RemoteIP: c.ClientIP()}, accountID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"unlocked": true})
	}
}

// handleDevSecurityCenterCode shows the current code of an account's
// security-center app, as if reading the app. Dev only.
func (s *Server) handleDevSecurityCenterCode() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		devs, err := s.deps.Store.ListDevices(c.Request.Context(), accountID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		for _, d := range devs {
			if d.Type != store.SecurityCenter || d.Status != store.DeviceActive {
				continue
			}
			secret, err := inventory.OpenSecret(c.Request.Context(), s.deps.Store, s.deps.Keys, store.SealedDevices, d.ID, d.Secret)
			if err != nil {
				fail(c, s.log, err)
				return
			}
			now := s.deps.Now()
			next := now.Truncate(30 * time.Second).Add(30 * time.Second)
			c.JSON(http.StatusOK, gin.H{"account_id": accountID, "code": mfa.TOTP(secret, now, mfa.Params{}), "valid_until": next.UTC()})
			return
		}
		fail(c, s.log, store.ErrNotFound)
	}
}
