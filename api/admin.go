package api

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/i18n"
	"github.com/mfaflow/mfaflow/internal/validate"
	"github.com/mfaflow/mfaflow/store"
)

var accountIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// accountID reads and checks the :account_id path parameter.
func accountID(c *gin.Context) (string, error) {
	id := c.Param("account_id")
	if !accountIDPattern.MatchString(id) {
		return "", &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "account_id", Message: "account ids are 1-64 letters, digits, '.', '_' or '-'"}
	}
	return id, nil
}

// accountRequest is the body of PUT /v1/admin/accounts/{account_id}.
type accountRequest struct {
	Type       string        `json:"type"`
	BoundPhone string        `json:"bound_phone"`
	Email      string        `json:"email"`
	Logins     []store.Login `json:"logins"`
	RealName   *struct {
		Verified bool   `json:"verified"`
		Name     string `json:"name"`
		IDNumber string `json:"id_number"`
	} `json:"real_name"`
	Company *struct {
		Name      string `json:"name"`
		RegNumber string `json:"reg_number"`
	} `json:"company"`
	LoginMethod string `json:"login_method"`
	Locale      string `json:"locale"`
	TimeZone    string `json:"time_zone"`
}

// account validates the request and returns the directory entry.
func (r accountRequest) account(id string) (store.Account, error) {
	a := store.Account{ID: id, Type: store.AccountType(r.Type), LoginMethod: store.LoginMethod(r.LoginMethod)}
	switch a.Type {
	case store.Personal, store.Enterprise:
	default:
		return a, invalidField("type", `must be "personal" or "enterprise"`)
	}
	var err error
	if a.BoundPhone, err = validate.Phone(r.BoundPhone); err != nil {
		return a, invalidField("bound_phone", "must be a mainland mobile number")
	}
	if r.Email != "" {
		if a.Email, err = validate.Email(r.Email); err != nil {
			return a, invalidField("email", "must be an e-mail address")
		}
	}
	if len(r.Logins) == 0 || len(r.Logins) > 8 {
		return a, invalidField("logins", "give 1 to 8 login ids")
	}
	seen := map[store.Login]bool{}
	for i, l := range r.Logins {
		if err := validate.LoginID(string(l.Kind), l.ID); err != nil {
			return a, invalidField("logins["+strconv.Itoa(i)+"]", "kind must be qq, email, wechat or wechat_official and the id must fit it")
		}
		if seen[l] {
			return a, invalidField("logins["+strconv.Itoa(i)+"]", "duplicate login")
		}
		seen[l] = true
	}
	a.Logins = r.Logins
	if r.RealName != nil {
		a.RealName.Verified = r.RealName.Verified
		if r.RealName.Name != "" || a.RealName.Verified {
			if a.RealName.Name, err = validate.Name(r.RealName.Name); err != nil {
				return a, invalidField("real_name.name", "must be 1-64 printable characters")
			}
		}
		if r.RealName.IDNumber != "" || a.RealName.Verified {
			if a.RealName.IDNumber, err = validate.IDNumber(r.RealName.IDNumber); err != nil {
				return a, invalidField("real_name.id_number", "must be an 18-character resident ID number with a valid checksum")
			}
		}
	}
	if r.Company != nil {
		if r.Company.Name != "" {
			if a.Company.Name, err = validate.Name(r.Company.Name); err != nil {
				return a, invalidField("company.name", "must be 1-64 printable characters")
			}
		}
		if r.Company.RegNumber != "" {
			if a.Company.RegNumber, err = validate.USCC(r.Company.RegNumber); err != nil {
				return a, invalidField("company.reg_number", "must be an 18-character unified social credit code with a valid checksum")
			}
		}
	}
	if a.Type == store.Enterprise && a.RealName.Verified && (a.Company.Name == "" || a.Company.RegNumber == "") {
		return a, invalidField("company", "a verified enterprise needs the company name and reg_number")
	}
	if a.Type == store.Personal && (a.Company != store.Company{}) {
		return a, invalidField("company", "a personal account has no company record")
	}
	switch a.LoginMethod {
	case "":
		a.LoginMethod = store.LoginSecurityCenter
	case store.LoginSecurityCenter, store.LoginMFA:
	default:
		return a, invalidField("login_method", `must be "security_center" or "mfa"`)
	}
	switch r.Locale {
	case "":
		a.Locale = store.DefaultLocale
	case string(i18n.ZH), string(i18n.EN):
		a.Locale = r.Locale
	default:
		return a, invalidField("locale", `must be "zh-CN" or "en"`)
	}
	a.TimeZone = store.DefaultTimeZone
	if r.TimeZone != "" {
		if _, err := time.LoadLocation(r.TimeZone); err != nil || r.TimeZone == "Local" || len(r.TimeZone) > 64 {
			return a, invalidField("time_zone", `must be an IANA time zone such as "Asia/Shanghai"`)
		}
		a.TimeZone = r.TimeZone
	}
	return a, nil
}

// accountView is an account as the admin API shows it: the ID number masked.
func accountView(a store.Account) store.Account {
	a.RealName.IDNumber = MaskID(a.RealName.IDNumber)
	return a
}

// MaskID keeps the first 4 and last 4 characters of an identity number.
func MaskID(s string) string {
	if len(s) <= 8 {
		return strings.Repeat("*", len(s))
	}
	return s[:4] + strings.Repeat("*", len(s)-8) + s[len(s)-4:]
}

func (s *Server) handlePutAccount() gin.HandlerFunc {
	return func(c *gin.Context) {
		entry := store.AuditEntry{Actor: actor(c), Action: "account.put"}
		id, err := accountID(c)
		if err == nil {
			entry.AccountID = id
			var req accountRequest
			if err = decodeJSON(c, &req); err == nil {
				var a store.Account
				if a, err = req.account(id); err == nil {
					var created bool
					if created, err = s.deps.Store.PutAccount(c.Request.Context(), a); err == nil {
						got, gerr := s.deps.Store.GetAccount(c.Request.Context(), id)
						if gerr != nil {
							fail(c, s.log, gerr)
							return
						}
						entry.Outcome = "ok"
						entry.Details = map[string]string{"created": strconv.FormatBool(created), "type": string(a.Type),
							"real_name_verified": strconv.FormatBool(a.RealName.Verified), "login_method": string(a.LoginMethod)}
						s.audit(c, entry)
						status := http.StatusOK
						if created {
							status = http.StatusCreated
						}
						c.JSON(status, accountView(got))
						return
					}
				}
			}
		}
		// Every refusal of the input (4xx, including a body over the cap)
		// is audited; store failures are only logged.
		if e, known := toError(err); known && e.Status < 500 {
			entry.Outcome = "invalid"
			entry.Details = map[string]string{"code": e.Code}
			if e.Field != "" {
				entry.Details["field"] = e.Field
			}
			s.audit(c, entry)
		}
		fail(c, s.log, err)
	}
}

func (s *Server) handleGetAccount() gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := accountID(c)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		a, err := s.deps.Store.GetAccount(c.Request.Context(), id)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, accountView(a))
	}
}

func (s *Server) handleListAudit() gin.HandlerFunc {
	return func(c *gin.Context) {
		f := store.AuditFilter{AccountID: c.Query("account_id"), Subject: c.Query("subject")}
		if f.AccountID != "" && !accountIDPattern.MatchString(f.AccountID) {
			fail(c, s.log, invalidField("account_id", "not an account id"))
			return
		}
		for name, dst := range map[string]*int64{"before": &f.BeforeID} {
			if v := c.Query(name); v != "" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 {
					fail(c, s.log, invalidField(name, "must be a non-negative integer"))
					return
				}
				*dst = n
			}
		}
		if v := c.Query("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				fail(c, s.log, invalidField("limit", "must be 1-1000"))
				return
			}
			f.Limit = n
		}
		entries, err := s.deps.Store.ListAudit(c.Request.Context(), f)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if entries == nil {
			entries = []store.AuditEntry{}
		}
		c.JSON(http.StatusOK, gin.H{"entries": entries})
	}
}
