package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1e12, "tib": 1 << 40,
}

// ParseSize parses a byte size: a whole number of bytes or a number with a
// unit: KiB, MiB, GiB, TiB (powers of 1024), KB, MB, GB, TB (powers of 1000),
// or K, M, G, T as in rclone (powers of 1024). Units are case-insensitive.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := sizeUnits[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes or a number with a unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil && mult == math.Trunc(mult) {
		if n > (math.MaxInt64-1)/int64(mult) {
			return 0, fmt.Errorf("invalid size %q: want a number of bytes or a number with a unit (KiB, MiB, GiB, KB, MB, GB)", s)
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes or a number with a unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	return int64(f * mult), nil
}

// FormatSize prints n bytes with a binary unit, as "1.5 MiB".
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
