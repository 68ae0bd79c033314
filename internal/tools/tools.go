//go:build tools

// Package tools pins the modules the project builds on, so go mod tidy keeps
// them and their sums while the packages that import them are written.
package tools

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/compose-spec/compose-go/v2/loader"
	_ "github.com/gin-gonic/gin"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/pquerna/otp/totp"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/temporalio/ui-server/v2/server"
	_ "github.com/versity/versitygw/embedgw"
	_ "go.temporal.io/sdk/client"
	_ "go.temporal.io/sdk/testsuite"
	_ "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	_ "go.temporal.io/server/schema/sqlite"
	_ "go.temporal.io/server/temporal"
	_ "go.temporal.io/server/temporaltest"
	_ "modernc.org/sqlite"
)
