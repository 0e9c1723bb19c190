package event

import "testing"

func TestValidCurrency(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"GBP", true},
		{"usd", true},
		{"EuR", true},
		{"XAU", true},
		{"", false},
		{"GB", false},
		{"GBPP", false},
		{"ZZZ", false},
		{"HRK", false},
		{"12A", false},
		{"gbp ", false},
	}
	for _, tt := range tests {
		if got := ValidCurrency(tt.code); got != tt.want {
			t.Errorf("ValidCurrency(%q) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

func TestValidCurrencyNoAlloc(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		ValidCurrency("GBP")
		ValidCurrency("usd")
	})
	if allocs != 0 {
		t.Errorf("ValidCurrency allocated %v times per run, want 0", allocs)
	}
}
