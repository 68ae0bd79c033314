package api

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/store"
)

// handleShortCancelLink serves the owner's cancel link of an SMS,
// /c/{token} (activities.OwnerCancelShortURL). The token reads as one
// appeal id under each key of the ring; the first that is an appeal is
// answered with 303 to the owner's cancel page with the full cancel token
// (activities.OwnerCancelToken), so a link sent before a key rotation works
// while its key stays in the ring. A token that names no appeal is 404
// not_found. The redirect cancels nothing: the page does, through POST
// /v1/appeals/{id}/cancel.
func (s *Server) handleShortCancelLink() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		c.Header("Referrer-Policy", "no-referrer")
		for _, id := range activities.OwnerCancelShortAppealIDs(s.deps.Keys, c.Param("token")) {
			_, err := s.deps.Store.GetAppeal(c.Request.Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				fail(c, s.log, err)
				return
			}
			c.Redirect(http.StatusSeeOther, "/appeals/"+url.PathEscape(id)+"/owner-cancel?token="+
				url.QueryEscape(activities.OwnerCancelToken(s.deps.Keys, id)))
			return
		}
		fail(c, s.log, errorf(http.StatusNotFound, "not_found", "this cancel link names no appeal; use the link of the e-mail"))
	}
}
