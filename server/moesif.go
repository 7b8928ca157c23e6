package server

import "strconv"

func strconvQuote(s string) string { return strconv.Quote(s) }
