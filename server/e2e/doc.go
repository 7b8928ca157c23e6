// Package e2e holds end-to-end tests that drive a running meterd with real
// third-party agents (the moesif-nodejs middleware in a tiny Express app).
package e2e
