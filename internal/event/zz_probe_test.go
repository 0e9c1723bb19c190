package event

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestZZProbe(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, ts := range []string{"2024-01-01T10:00:00t", "2024-01-01t10:00:00z", "2024-01-01T10:00:00+00:00", "2024-01-01T10:00:00-00:00", "2024-01-01T10:00:00,5Z", "2024-01-01T10:00:00.Z", "2024-01-01T10:00:00.1234567891234Z", "2024-01-01T23:59:60Z", "2024-01-01T10:00:00+24:00", "2024-01-01T10:00:00+23:59", "0001-01-01T00:00:00Z", "2024-01-01 10:00:00Z", "2024-01-01T10:00Z", "2024-02-30T10:00:00Z", "2024-01-01T10:00:00+0100"} {
		f, err := Decode([]byte(`{"reference":"r","click_timestamp":"`+ts+`"}`), now)
		fmt.Printf("%q -> %v %v %v\n", ts, f.ClickTimestamp, Schema[14].Value(&f), err)
	}
	for _, b := range []string{"\u00a0", "\v", strings.Repeat("[", 9999) + strings.Repeat("]", 9999), `{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`, `{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, "{}{}", "{} x", "\ufeff{}", `"x"`, "nul"} {
		_, err := Decode([]byte(b), now)
		s := fmt.Sprint(err)
		if len(s) > 200 { s = s[:200] }
		fmt.Printf("%.20q -> %s\n", b, s)
	}
	for _, r := range []string{"0.1", "1e-400", "-0", "-1e-400", "0.0000005", "1E+2", "1e999999999", "-1e999999999"} {
		f, err := Decode([]byte(`{"reference":"r","revenue_value":`+r+`}`), now)
		fmt.Println(r, f.HasRevenue, f.RevenueMicros, err)
	}
	big := "0." + strings.Repeat("0", 1000000) + "1e1000006"
	m, err := parseMicros([]byte(big))
	fmt.Println("big", m, err)
}
