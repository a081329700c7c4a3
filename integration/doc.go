// Package integration holds multi-process tests: the real anyops binary, built by the test,
// runs as child processes against the real Temporal dev server, and the tests kill them the
// way a machine dies. It has no code outside its tests.
package integration
