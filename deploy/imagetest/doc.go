// Package imagetest holds the test that cccp builds, tests and delivers
// its own image (deploy/Containerfile) through its own pipeline, as
// `make image` does. It is a package of its own so that its minutes of
// building count against their own `go test -timeout`, not cmd/cccp's.
package imagetest
