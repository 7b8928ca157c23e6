package rules

import "cmp"

// Actor is who a change to a meter, a rule or the billing settings is
// recorded as made by: the name given, or "admin" (the admin token, which
// names no one).
func Actor(name string) string { return cmp.Or(name, "admin") }
