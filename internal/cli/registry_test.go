package cli

import (
	"testing"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/conversion"
)

// TestPlatformClientsComplete: the binary carries a client for every platform,
// each answering for its own name, so `serve` runs the send loop.
func TestPlatformClientsComplete(t *testing.T) {
	reg := platformClients(config.Default())
	if len(reg) != len(conversion.Platforms) {
		t.Fatalf("%d clients, want %d", len(reg), len(conversion.Platforms))
	}
	for _, p := range conversion.Platforms {
		if c := reg[p]; c == nil || c.Platform() != p {
			t.Errorf("%s: client %v", p, c)
		}
	}
}
