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

// Keys are the credentials in force.
type Keys struct {
	AdminToken string `json:"admin_token"`
	IngestKey  string `json:"ingest_key"`
}

// FileName is the keys file inside the data directory.
const FileName = "keys.json"

// Load returns the keys: a non-empty fixed value wins; otherwise the value
// kept in dataDir/keys.json; otherwise a new random one, saved there (0600).
func Load(dataDir, fixedAdmin, fixedIngest string) (Keys, error) {
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
	changed := false
	if kept.AdminToken == "" {
		kept.AdminToken, changed = "mdadm_"+random(), true
	}
	if kept.IngestKey == "" {
		kept.IngestKey, changed = "mding_"+random(), true
	}
	if changed {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return Keys{}, err
		}
		out, _ := json.MarshalIndent(kept, "", "  ")
		if err := os.WriteFile(path, out, 0o600); err != nil {
			return Keys{}, err
		}
	}
	if fixedAdmin != "" {
		kept.AdminToken = fixedAdmin
	}
	if fixedIngest != "" {
		kept.IngestKey = fixedIngest
	}
	return kept, nil
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
