package web

import (
	"strings"
	"testing"
)

// FuzzNegotiate: any Accept-Language header gives French or English, and
// the answer does not depend on spaces around the separators.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{
		"", "fr", "en", "en-GB,en;q=0.9,fr;q=0.8", "fr-FR, en;q=0.5", "en;q=0, fr;q=0", "de, en",
		"en;q=1.5", "en;q=abc", "en;q=0.5;q=0.9", ",,,;;;=", "EN-us", "*;q=0.1", strings.Repeat("en;q=0.1,", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := negotiate(header)
		if got != &french && got != &english {
			t.Fatalf("negotiate(%q) = %v", header, got)
		}
		spaced := strings.ReplaceAll(strings.ReplaceAll(header, ",", " , "), ";", " ; ")
		if negotiate(spaced) != got {
			t.Fatalf("spaces change the language of %q", header)
		}
	})
}
