package main

import "testing"

func TestLocalURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		"[::]:9":         "http://127.0.0.1:9",
		"127.0.0.1:8090": "http://127.0.0.1:8090",
		"meterd:80":      "http://meterd:80",
		"[::1]:8080":     "http://[::1]:8080",
	} {
		if got := localURL(addr); got != want {
			t.Errorf("localURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
