package secret

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateIsStable(t *testing.T) {
	dir := t.TempDir()
	var keys [8]Key
	var wg sync.WaitGroup
	for i := range keys { // processes starting together agree on one key
		wg.Go(func() {
			k, err := LoadOrCreate(dir)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k.Check() != keys[0].Check() {
			t.Fatal("concurrent first starts made different keys")
		}
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreate(dir)
	if err != nil || again.Check() != keys[0].Check() {
		t.Fatalf("reload gave another key: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, ok := range []string{
		"dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXk=",
		strings.Repeat("ab", 32),
	} {
		if _, err := Parse(ok); err != nil {
			t.Errorf("Parse(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "short", "dGVzdA==", strings.Repeat("zz", 40)[:31]} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestSealIsBoundToPlaceAndKey(t *testing.T) {
	k1, _ := Parse(strings.Repeat("11", 32))
	k2, _ := Parse(strings.Repeat("22", 32))
	sealed := k1.Seal("pruuv_whk_secret", "stage_tokens:a")
	if strings.Contains(sealed, "secret") {
		t.Fatal("plaintext visible in sealed value")
	}
	if got, err := k1.Open(sealed, "stage_tokens:a"); err != nil || got != "pruuv_whk_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := k1.Open(sealed, "stage_tokens:b"); err != ErrDecrypt {
		t.Errorf("moved ciphertext decrypted: %v", err)
	}
	if _, err := k2.Open(sealed, "stage_tokens:a"); err != ErrDecrypt {
		t.Errorf("other key decrypted: %v", err)
	}
	if k1.Seal("x", "a") == k1.Seal("x", "a") {
		t.Error("two seals of one value are equal: nonce reused")
	}
	if string(k1.Hash("t")) == string(k2.Hash("t")) || string(k1.Hash("t")) != string(k1.Hash("t")) {
		t.Error("token hash must be keyed and deterministic")
	}
	if k1.String() != "[redacted]" {
		t.Error("key printed")
	}
}
