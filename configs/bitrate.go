package configs

import (
	"errors"
	"strconv"
	"strings"
)

// BitRate is a number of bits per second written in YAML as a number with
// an optional unit: "500k", "2.5M", "800kbit", "64000". Units are k, M and
// G (powers of 1000), optionally followed by "bit", "bps" or "b/s",
// case-insensitive.
type BitRate int64

// String formats the rate in the largest unit that divides it ("500k").
func (b BitRate) String() string {
	switch {
	case b != 0 && b%1e9 == 0:
		return strconv.FormatInt(int64(b)/1e9, 10) + "G"
	case b != 0 && b%1e6 == 0:
		return strconv.FormatInt(int64(b)/1e6, 10) + "M"
	case b != 0 && b%1e3 == 0:
		return strconv.FormatInt(int64(b)/1e3, 10) + "k"
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText encodes the rate as its String form.
func (b BitRate) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

var errBitRate = errors.New(`is not a bit rate: use a number and a unit, e.g. "500k" or "2.5M"`)

func parseBitRate(s string) (BitRate, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, suffix := range []string{"bit/s", "b/s", "bps", "bit"} {
		if strings.HasSuffix(t, suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, suffix))
			break
		}
	}
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"k", 1e3}, {"m", 1e6}, {"g", 1e9}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || f < 0 || f*mult > 1e12 || f != f {
		return 0, errBitRate
	}
	return BitRate(f * mult), nil
}
