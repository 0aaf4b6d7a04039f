package configs

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestZZHang(t *testing.T) {
	files, _ := filepath.Glob(os.Getenv("FZDIR") + "/*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		// corpus format: go test fuzz v1\n[]byte("...")
		lines := string(b)
		i := len("go test fuzz v1\n[]byte(")
		s, err := strconv.Unquote(lines[i : len(lines)-2])
		if err != nil {
			t.Log(f, err)
			continue
		}
		start := time.Now()
		_, _ = Parse([]byte(s), fuzzEnv)
		if el := time.Since(start); el > 100*time.Millisecond {
			t.Logf("%s took %v: %q", f, el, s)
		}
	}
}
