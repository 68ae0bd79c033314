package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// handleIndex answers GET /v1: where the API's contract and its parts are,
// so that the API's base URL (the dev banner's) answers something useful.
func handleIndex() gin.HandlerFunc {
	body := gin.H{
		"name":    "mfaflow",
		"openapi": "/openapi.yaml",
		"health":  "/healthz",
		"ready":   "/readyz",
		"apis": gin.H{
			"console":   "/v1/accounts/{account_id}/mfa",
			"applicant": "/v1/appeals",
			"reviewer":  "/v1/review/appeals",
			"admin":     "/v1/admin",
		},
	}
	return func(c *gin.Context) { c.JSON(http.StatusOK, body) }
}
