package config

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAreValid(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil || c.Validate() != nil {
		t.Fatalf("defaults: %v %v", err, c.Validate())
	}
	if c.Addr != ":8080" || c.DataDir != "./pruuv-data" || c.DatabaseURL != "" || c.Durability != "strict" {
		t.Fatalf("defaults %+v", c)
	}
}

func TestEnvThenFlags(t *testing.T) {
	c, err := FromEnv(env(map[string]string{"PRUUV_ADDR": "127.0.0.1:9000", "PRUUV_DATA_DIR": "/var/lib/pruuv",
		"PRUUV_DATABASE_URL": "postgres://db/x", "PRUUV_SHUTDOWN_TIMEOUT": "3s", "PRUUV_DB_MAX_CONNS": "20"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9000" || c.DataDir != "/var/lib/pruuv" || c.ShutdownTimeout != 3*time.Second || c.DBMaxConns != 20 {
		t.Fatalf("from env %+v", c)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.ServeFlags(fs)
	if err := fs.Parse([]string{"--addr", ":7000"}); err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7000" || c.DataDir != "/var/lib/pruuv" {
		t.Fatalf("flag did not override env, or clobbered another: %+v", c)
	}
}

func TestValidateNamesWhatToFix(t *testing.T) {
	c := Default()
	c.Addr, c.DatabaseURL, c.Durability, c.LogLevel, c.LogFormat, c.DBMaxConns = "8080", "mysql://x", "fast", "loud", "xml", 0
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, v := range []string{"PRUUV_ADDR", "PRUUV_DATABASE_URL", "PRUUV_DURABILITY", "PRUUV_LOG_LEVEL", "PRUUV_LOG_FORMAT", "PRUUV_DB_MAX_CONNS"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
	if _, err := FromEnv(env(map[string]string{"PRUUV_SHUTDOWN_TIMEOUT": "soon"})); err == nil {
		t.Error("bad duration accepted")
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	c := Default()
	c.SecretKey = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
	c.DatabaseURL = "postgres://user:hunter2@db/x"
	out := fmt.Sprint(c.LogValue())
	if strings.Contains(out, c.SecretKey) || strings.Contains(out, "hunter2") {
		t.Fatalf("secret in %s", out)
	}
}

func TestPublicURLAndClientIPHeader(t *testing.T) {
	for _, ok := range []string{"", "https://pruuv.example.com", "http://localhost:8080", "https://pruuv.example.com/"} {
		c := Default()
		c.PublicURL = ok
		if err := c.Validate(); err != nil {
			t.Errorf("PRUUV_PUBLIC_URL=%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"pruuv.example.com", "ftp://x", "https://x.example/app", "https://x.example?a=1", "https://"} {
		c := Default()
		c.PublicURL = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "PRUUV_PUBLIC_URL") {
			t.Errorf("PRUUV_PUBLIC_URL=%q: %v", bad, err)
		}
	}
	c := Default()
	c.ClientIPHeader = "X Real IP"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "PRUUV_CLIENT_IP_HEADER") {
		t.Errorf("bad header name: %v", err)
	}
}
