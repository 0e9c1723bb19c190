package pixel

import (
	"os"
	"os/exec"
	"testing"
)

// RequireNodeEnv names the variable that turns a missing node from a skip
// into a failure (CI sets it).
const RequireNodeEnv = "PRUUV_TEST_REQUIRE_NODE"

// TestPixelJSUnit runs testdata/pixel.test.js, the unit tests of pixel.js's
// logic, under Node's built-in test runner with a fake browser.
func TestPixelJSUnit(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv(RequireNodeEnv) == "1" {
			t.Fatalf("node is not on PATH and %s=1", RequireNodeEnv)
		}
		t.Skipf("pixel.js unit tests skipped: node is not on PATH (install Node.js 20 or later; %s=1 makes this a failure)", RequireNodeEnv)
	}
	cmd := exec.Command(node, "--test", "--test-reporter=spec", "testdata/pixel.test.js")
	cmd.Env = append(os.Environ(), "PRUUV_SNIPPET="+Snippet("https://pruuv.example", "pk_snippet"), "NODE_OPTIONS=")
	out, err := cmd.CombinedOutput()
	t.Logf("node --test testdata/pixel.test.js:\n%s", out)
	if err != nil {
		t.Fatalf("pixel.js unit tests failed: %v", err)
	}
}
