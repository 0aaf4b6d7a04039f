package meeting

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExtensionID: the ID Chromium gives the extension follows from the
// public key in its manifest, and the manifest asks for what capture
// needs and no more.
func TestExtensionID(t *testing.T) {
	manifest, err := extensionFiles.ReadFile("extension/manifest.json")
	require.NoError(t, err)
	id, err := idFromManifestKey(manifest)
	require.NoError(t, err)
	require.Equal(t, extensionID, id)

	var m struct {
		Version     int      `json:"manifest_version"`
		Permissions []string `json:"permissions"`
		HostPerms   []string `json:"host_permissions"`
		Background  struct {
			ServiceWorker string `json:"service_worker"`
		} `json:"background"`
	}
	require.NoError(t, json.Unmarshal(manifest, &m))
	require.Equal(t, 3, m.Version)
	require.ElementsMatch(t, []string{"tabCapture", "offscreen", "tabs"}, m.Permissions)
	require.Empty(t, m.HostPerms)
	require.Equal(t, "sw.js", m.Background.ServiceWorker)

	_, err = idFromManifestKey([]byte(`{"key": "not base64!"}`))
	require.Error(t, err)
}

func TestWriteExtension(t *testing.T) {
	dir, err := writeExtension(t.TempDir())
	require.NoError(t, err)
	for _, f := range []string{"manifest.json", "sw.js", "offscreen.html", "offscreen.js"} {
		want, err := extensionFiles.ReadFile("extension/" + f)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, want, got, f)
	}
}
