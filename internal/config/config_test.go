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

func TestPixelSettings(t *testing.T) {
	c, err := FromEnv(env(map[string]string{"PRUUV_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,::ffff:172.16.0.0/108",
		"PRUUV_PIXEL_IP_RATE": "0", "PRUUV_PIXEL_IP_BURST": "5"}))
	if err != nil || c.Validate() != nil {
		t.Fatalf("%v %v", err, c.Validate())
	}
	if c.PixelIPRate != 0 || c.PixelIPBurst != 5 {
		t.Fatalf("rate %d burst %d", c.PixelIPRate, c.PixelIPBurst)
	}
	ps, err := c.TrustedProxyPrefixes()
	if got := fmt.Sprint(ps); err != nil || got != "[10.0.0.0/8 192.168.1.7/32 2001:db8::/32 172.16.0.0/12]" {
		t.Fatalf("prefixes %s, %v", got, err)
	}
	if d := Default(); d.PixelIPRate != 60 || d.PixelIPBurst != 60 || d.TrustedProxies != "" {
		t.Fatalf("defaults %+v", d)
	}
	c = Default()
	c.TrustedProxies, c.PixelIPRate, c.PixelIPBurst = "10.0.0.0/8,proxy.internal", -1, 0
	err = c.Validate()
	for _, v := range []string{"PRUUV_TRUSTED_PROXIES", "proxy.internal", "PRUUV_PIXEL_IP_RATE", "PRUUV_PIXEL_IP_BURST"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
	if _, err := FromEnv(env(map[string]string{"PRUUV_PIXEL_IP_RATE": "lots"})); err == nil || !strings.Contains(err.Error(), "PRUUV_PIXEL_IP_RATE") {
		t.Errorf("bad rate: %v", err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c = Default()
	c.ServeFlags(fs)
	if err := fs.Parse([]string{"--pixel-ip-rate", "120", "--trusted-proxies", "127.0.0.1"}); err != nil || c.PixelIPRate != 120 || c.TrustedProxies != "127.0.0.1" {
		t.Fatalf("flags: %v %+v", err, c)
	}
}

func TestConversionSettings(t *testing.T) {
	c, err := FromEnv(env(map[string]string{"PRUUV_CONVERSIONS_SCHEDULE": "*/30 * * * *", "PRUUV_CONVERSIONS_POLL": "2s",
		"PRUUV_CONVERSIONS_LEASE": "15s", "PRUUV_META_API_URL": "http://127.0.0.1:9999", "PRUUV_MICROSOFT_OAUTH_URL": "https://login.example"}))
	if err != nil || c.Validate() != nil {
		t.Fatalf("%v %v", err, c.Validate())
	}
	if c.ConversionsSchedule != "*/30 * * * *" || c.ConversionsPoll != 2*time.Second || c.ConversionsLease != 15*time.Second || c.Endpoints.Meta != "http://127.0.0.1:9999" ||
		c.Endpoints.MicrosoftOAuth != "https://login.example" || c.Endpoints.TikTok != "https://business-api.tiktok.com" {
		t.Fatalf("from env %+v", c)
	}
	for _, s := range []string{"immediate", "off", "@daily", "0 3 * * *"} {
		c.ConversionsSchedule = s
		if err := c.Validate(); err != nil {
			t.Errorf("schedule %q refused: %v", s, err)
		}
	}
	c.ConversionsSchedule, c.ConversionsPoll, c.ConversionsLease = "every day at 3", 0, 2*time.Hour
	c.Endpoints.GoogleAds, c.Endpoints.TikTok = "ftp://x", "/relative"
	err = c.Validate()
	for _, v := range []string{"PRUUV_CONVERSIONS_SCHEDULE", "PRUUV_CONVERSIONS_POLL", "PRUUV_CONVERSIONS_LEASE", "PRUUV_GOOGLE_ADS_API_URL", "PRUUV_TIKTOK_API_URL"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
	if strings.Contains(err.Error(), "PRUUV_META_API_URL") {
		t.Errorf("a valid URL was refused: %v", err)
	}
	if _, err := FromEnv(env(map[string]string{"PRUUV_CONVERSIONS_POLL": "often"})); err == nil {
		t.Error("bad poll accepted")
	}
	if _, err := FromEnv(env(map[string]string{"PRUUV_CONVERSIONS_LEASE": "long"})); err == nil {
		t.Error("bad lease accepted")
	}
	if d := Default(); d.ConversionsLease != 10*time.Minute || d.Validate() != nil {
		t.Errorf("default lease %s: %v", d.ConversionsLease, d.Validate())
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
