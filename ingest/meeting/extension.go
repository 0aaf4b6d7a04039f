package meeting

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// extensionFiles is the capture extension (Manifest V3): a service worker
// that gets a media stream id for the meeting tab (chrome.tabCapture) and
// an offscreen document that captures it and publishes it over WHIP.
//
//go:embed extension
var extensionFiles embed.FS

// extensionID is the extension's ID, fixed by the public key in its
// manifest (the private key was thrown away: the extension is loaded
// unpacked, never signed). TestExtensionID checks it against the key.
const extensionID = "kodjkefohcgbaehfkdppbnbedopblcdj"

// writeExtension copies the extension into a new directory under dir and
// returns its path.
func writeExtension(dir string) (string, error) {
	out, err := os.MkdirTemp(dir, "seance-capture-extension-")
	if err != nil {
		return "", fmt.Errorf("capture extension: %w", err)
	}
	err = fs.WalkDir(extensionFiles, "extension", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := extensionFiles.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(out, filepath.Base(path)), data, 0o600)
	})
	if err != nil {
		os.RemoveAll(out)
		return "", fmt.Errorf("capture extension: %w", err)
	}
	return out, nil
}

// idFromManifestKey computes an unpacked extension's ID from the "key" of
// its manifest (base64 of the DER public key): the first 128 bits of its
// SHA-256, each hex digit 0-f written as a letter a-p.
func idFromManifestKey(manifest []byte) (string, error) {
	var m struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return "", err
	}
	der, err := base64.StdEncoding.DecodeString(m.Key)
	if err != nil || len(der) == 0 {
		return "", fmt.Errorf("manifest key: not base64 DER")
	}
	sum := sha256.Sum256(der)
	id := make([]byte, 32)
	for i, b := range sum[:16] {
		id[2*i] = 'a' + b>>4
		id[2*i+1] = 'a' + b&0x0f
	}
	return string(id), nil
}
