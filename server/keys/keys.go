// Package keys holds meterd's two credentials: the admin token (read API,
// meters, settings) and the ingest key (event ingestion). Unless fixed by
// configuration they are generated once and kept in the data directory, so a
// restart keeps the keys the user's middleware was configured with.
package keys

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Keys are the credentials in force, and where each came from.
type Keys struct {
	AdminToken string `json:"admin_token,omitempty"`
	IngestKey  string `json:"ingest_key,omitempty"`
	// AdminFixed and IngestFixed say which keys configuration fixed; File
	// is the keys file holding the others, "" when both are fixed.
	AdminFixed  bool   `json:"-"`
	IngestFixed bool   `json:"-"`
	File        string `json:"-"`
}

// FileName is the keys file inside the data directory.
const FileName = "keys.json"

// Load returns the keys: a non-empty fixed value wins; otherwise the value
// kept in dataDir/keys.json; otherwise a new random one, saved there (0600).
// Only keys that are not fixed are generated and written, and with both
// fixed the file is neither read nor written (nor the directory created):
// so a fixed key never comes with an unused generated one. A file from an
// earlier start may still hold a key now fixed; Keys says which is used.
func Load(dataDir, fixedAdmin, fixedIngest string) (Keys, error) {
	k := Keys{AdminToken: fixedAdmin, IngestKey: fixedIngest, AdminFixed: fixedAdmin != "", IngestFixed: fixedIngest != ""}
	if k.AdminFixed && k.IngestFixed {
		return k, nil
	}
	path := filepath.Join(dataDir, FileName)
	var kept Keys
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &kept); err != nil {
			return Keys{}, fmt.Errorf("%s: %w", path, err)
		}
	case !os.IsNotExist(err):
		return Keys{}, err
	}
	var newAdmin, newIngest bool
	k.AdminToken, newAdmin = inForce(fixedAdmin, &kept.AdminToken, "mdadm_")
	k.IngestKey, newIngest = inForce(fixedIngest, &kept.IngestKey, "mding_")
	if newAdmin || newIngest {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return Keys{}, err
		}
		out, _ := json.MarshalIndent(kept, "", "  ")
		if err := os.WriteFile(path, out, 0o600); err != nil {
			return Keys{}, err
		}
	}
	k.File = path
	return k, nil
}

// inForce is the fixed value, else the kept one, generated (prefix and 64
// hex digits) when there is none yet.
func inForce(fixed string, kept *string, prefix string) (key string, generated bool) {
	if fixed != "" {
		return fixed, false
	}
	if *kept == "" {
		*kept, generated = prefix+random(), true
	}
	return *kept, generated
}

// MinAgentKeyLength is the shortest application id Moesif's agents accept
// (moesif-nodejs refuses shorter ones at start-up).
const MinAgentKeyLength = 50

// random is 64 hex digits: with its prefix a key is longer than
// MinAgentKeyLength.
func random() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
