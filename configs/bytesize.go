package configs

import (
	"errors"
	"strconv"
	"strings"
)

// ByteSize is a number of bytes written in YAML as a number with an optional
// unit: "500MB", "50GiB", "1TB", "1048576". Units are B, KB/MB/GB/TB (powers
// of 1000) and KiB/MiB/GiB/TiB (powers of 1024), case-insensitive.
type ByteSize int64

// String formats the size in the largest binary unit that divides it.
func (b ByteSize) String() string {
	units := []string{"TiB", "GiB", "MiB", "KiB"}
	for i, u := range units {
		m := int64(1) << (10 * (len(units) - i))
		if b != 0 && int64(b)%m == 0 {
			return strconv.FormatInt(int64(b)/m, 10) + u
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText encodes the size as its String form.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

var errByteSize = errors.New(`is not a size: use a number and a unit, e.g. "500MB" or "50GiB"`)

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12},
	{"b", 1},
}

func parseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 || t == "" {
		return 0, errByteSize
	}
	return ByteSize(f * float64(mult)), nil
}
