//go:build !race

package mongostore

// raceEnabled reports whether the tests run under the race detector, which
// slows FerretDB's transpiled SQLite by an order of magnitude.
const raceEnabled = false
