// Package composetest holds only tests: they load the repository's
// docker-compose.yml with compose-go, the loader Docker Compose itself uses,
// and check it against the code — the mfaflow services pass only variables
// internal/config reads, serve and worker find every setting they require,
// service names, credentials and versions agree across services, and the
// Dockerfile builds ./cmd/mfaflow into the image's entrypoint.
package composetest
