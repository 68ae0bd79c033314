package dbutil

import "strings"

// SplitRoles reads a staff session's stored roles (comma-separated).
func SplitRoles(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
