package re2

import "testing"

// ProgramSize on patterns small enough to count by hand (RE2's own
// counts are checked against the stores in engine/backtest/patterns_test.go).
func TestProgramSize(t *testing.T) {
	for pattern, want := range map[string]int{
		`ab`:               4 + 2,         // a byte each
		`é`:                4 + 2,         // two bytes
		`[a-z0-9]`:         4 + 1 + 1 + 1, // two ASCII ranges and an alternation
		`[\x{80}-\x{7FF}]`: 4 + 2,         // one two-byte sequence
		`[\x{7F}-\x{80}]`:  4 + 1 + 2 + 1, // split by length
		`a*`:               4 + 1 + 2,
		`a{3}`:             4 + 3*(1+1) + 2,
		`a{2,}`:            4 + 3*(1+1) + 2,
		`a|bc`:             4 + 1 + 2 + 1,
		`(?i)k`:            4 + 1 + 1 + 3 + 2, // K, k and the Kelvin sign (3 bytes)
		`^$`:               4 + 2,
	} {
		got, err := ProgramSize(pattern)
		if err != nil || got != want {
			t.Errorf("ProgramSize(%q) = %d, %v; want %d", pattern, got, err, want)
		}
	}
	if _, err := ProgramSize(`(`); err == nil {
		t.Error("an invalid pattern has no size")
	}
}
