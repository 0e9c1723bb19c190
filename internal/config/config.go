// Package config reads Pruuv's settings: environment variables (PRUUV_*) first,
// command-line flags over them, defaults in one place, validated once.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
)

// Config is every setting of a Pruuv process.
type Config struct {
	Addr            string        // PRUUV_ADDR
	DataDir         string        // PRUUV_DATA_DIR: the SQLite file and the generated secret key
	DatabaseURL     string        // PRUUV_DATABASE_URL: postgres://… switches to PostgreSQL
	SecretKey       string        // PRUUV_SECRET_KEY: overrides DataDir/secret.key
	Durability      string        // PRUUV_DURABILITY: strict (synchronous=FULL) or relaxed (NORMAL)
	LogLevel        string        // PRUUV_LOG_LEVEL: debug, info, warn, error
	LogFormat       string        // PRUUV_LOG_FORMAT: json or text
	ShutdownTimeout time.Duration // PRUUV_SHUTDOWN_TIMEOUT: how long in-flight requests get on SIGTERM
	DBMaxConns      int           // PRUUV_DB_MAX_CONNS: PostgreSQL connections per process
	DrainDelay      time.Duration // PRUUV_DRAIN_DELAY: on SIGTERM, how long /readyz fails while requests are still served
	// TrustedProxies (PRUUV_TRUSTED_PROXIES) lists the CIDRs of reverse proxies
	// whose X-Forwarded-For is believed when the Pixel records a visitor's IP.
	TrustedProxies string
	PixelIPRate    int // PRUUV_PIXEL_IP_RATE: Pixel events per minute per client IP, per process; 0 turns the cap off
	PixelIPBurst   int // PRUUV_PIXEL_IP_BURST: how many of them may come at once

	// ConversionsSchedule is PRUUV_CONVERSIONS_SCHEDULE: a five-field cron
	// expression in UTC, "immediate" or "off".
	ConversionsSchedule string
	// ConversionsPoll is PRUUV_CONVERSIONS_POLL: how often `pruuv serve`
	// plans new events and sends what is due.
	ConversionsPoll time.Duration
	// ConversionsLease is PRUUV_CONVERSIONS_LEASE: how long a claimed send
	// stays reserved for the process that claimed it. Only a process that
	// died mid-send leaves one to run out; tests shorten it to see the
	// re-send.
	ConversionsLease time.Duration
	// Endpoints are the platforms' base URLs (PRUUV_META_API_URL and the like).
	Endpoints conversion.Endpoints

	PublicURL      string // PRUUV_PUBLIC_URL: the external origin, e.g. https://pruuv.example.com (endpoint URLs, Secure cookies)
	ClientIPHeader string // PRUUV_CLIENT_IP_HEADER: header a trusted proxy sets to the client address (login limiter)
}

// Default returns the settings used when nothing is configured.
func Default() Config {
	return Config{
		Addr:            ":8080",
		DataDir:         "./pruuv-data",
		Durability:      "strict",
		LogLevel:        "info",
		LogFormat:       "json",
		ShutdownTimeout: 20 * time.Second,
		DBMaxConns:      12,
		PixelIPRate:     60,
		PixelIPBurst:    60,

		ConversionsSchedule: conversion.DefaultSchedule,
		ConversionsPoll:     5 * time.Second,
		ConversionsLease:    conversion.DefaultLease,
		Endpoints:           conversion.DefaultEndpoints,
	}
}

// endpointVars names the variable of each platform base URL.
func (c *Config) endpointVars() []struct {
	name string
	dst  *string
} {
	e := &c.Endpoints
	return []struct {
		name string
		dst  *string
	}{
		{"PRUUV_META_API_URL", &e.Meta},
		{"PRUUV_GOOGLE_DATAMANAGER_URL", &e.GoogleDataManager},
		{"PRUUV_GOOGLE_ADS_API_URL", &e.GoogleAds},
		{"PRUUV_GOOGLE_OAUTH_URL", &e.GoogleOAuth},
		{"PRUUV_TIKTOK_API_URL", &e.TikTok},
		{"PRUUV_MICROSOFT_API_URL", &e.Microsoft},
		{"PRUUV_MICROSOFT_OAUTH_URL", &e.MicrosoftOAuth},
	}
}

// FromEnv returns the defaults overridden by PRUUV_* variables.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Default()
	set := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set("PRUUV_ADDR", &c.Addr)
	set("PRUUV_DATA_DIR", &c.DataDir)
	set("PRUUV_DATABASE_URL", &c.DatabaseURL)
	set("PRUUV_SECRET_KEY", &c.SecretKey)
	set("PRUUV_DURABILITY", &c.Durability)
	set("PRUUV_LOG_LEVEL", &c.LogLevel)
	set("PRUUV_LOG_FORMAT", &c.LogFormat)
	set("PRUUV_TRUSTED_PROXIES", &c.TrustedProxies)
	set("PRUUV_PUBLIC_URL", &c.PublicURL)
	set("PRUUV_CLIENT_IP_HEADER", &c.ClientIPHeader)
	if v := getenv("PRUUV_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("PRUUV_SHUTDOWN_TIMEOUT=%q: want a duration such as 20s", v)
		}
		c.ShutdownTimeout = d
	}
	if v := getenv("PRUUV_DRAIN_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("PRUUV_DRAIN_DELAY=%q: want a duration such as 5s", v)
		}
		c.DrainDelay = d
	}
	set("PRUUV_CONVERSIONS_SCHEDULE", &c.ConversionsSchedule)
	if v := getenv("PRUUV_CONVERSIONS_POLL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("PRUUV_CONVERSIONS_POLL=%q: want a duration such as 5s", v)
		}
		c.ConversionsPoll = d
	}
	if v := getenv("PRUUV_CONVERSIONS_LEASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("PRUUV_CONVERSIONS_LEASE=%q: want a duration such as 10m", v)
		}
		c.ConversionsLease = d
	}
	for _, ev := range c.endpointVars() {
		set(ev.name, ev.dst)
	}
	if v := getenv("PRUUV_DB_MAX_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("PRUUV_DB_MAX_CONNS=%q: want a whole number such as 12", v)
		}
		c.DBMaxConns = n
	}
	for _, v := range []struct {
		name string
		dst  *int
	}{{"PRUUV_PIXEL_IP_RATE", &c.PixelIPRate}, {"PRUUV_PIXEL_IP_BURST", &c.PixelIPBurst}} {
		if s := getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return c, fmt.Errorf("%s=%q: want a whole number such as 60", v.name, s)
			}
			*v.dst = n
		}
	}
	return c, nil
}

// StorageFlags registers the flags every command that opens the database takes.
func (c *Config) StorageFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the SQLite file and secret key (PRUUV_DATA_DIR)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "postgres://… to use PostgreSQL instead of SQLite (PRUUV_DATABASE_URL)")
}

// ServeFlags registers the flags of `pruuv serve`.
func (c *Config) ServeFlags(fs *flag.FlagSet) {
	c.StorageFlags(fs)
	fs.StringVar(&c.Addr, "addr", c.Addr, "address to listen on (PRUUV_ADDR)")
	fs.StringVar(&c.Durability, "durability", c.Durability, "strict (SQLite synchronous=FULL) or relaxed (NORMAL) (PRUUV_DURABILITY)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (PRUUV_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text (PRUUV_LOG_FORMAT)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time in-flight requests get on SIGTERM (PRUUV_SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay, "on SIGTERM, time /readyz fails before the listener closes (PRUUV_DRAIN_DELAY)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "comma-separated CIDRs of proxies whose X-Forwarded-For is believed (PRUUV_TRUSTED_PROXIES)")
	fs.IntVar(&c.PixelIPRate, "pixel-ip-rate", c.PixelIPRate, "Pixel events per minute per client IP, per process; 0 = no cap (PRUUV_PIXEL_IP_RATE)")
	fs.IntVar(&c.PixelIPBurst, "pixel-ip-burst", c.PixelIPBurst, "Pixel events a client IP may send at once (PRUUV_PIXEL_IP_BURST)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "external origin of this instance, e.g. https://pruuv.example.com (PRUUV_PUBLIC_URL)")
}

// Validate says what to fix, naming the variable, for every bad setting.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("PRUUV_ADDR=%q: want host:port, e.g. :8080 or 127.0.0.1:8080", c.Addr))
	}
	if c.DatabaseURL == "" && strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("PRUUV_DATA_DIR is empty: name a directory for the SQLite database"))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("PRUUV_DATABASE_URL must start with postgres:// or postgresql:// (leave it unset for the embedded SQLite)"))
	}
	if c.Durability != "strict" && c.Durability != "relaxed" {
		errs = append(errs, fmt.Errorf("PRUUV_DURABILITY=%q: want strict or relaxed", c.Durability))
	}
	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("PRUUV_LOG_FORMAT=%q: want json or text", c.LogFormat))
	}
	if c.DrainDelay < 0 || c.DrainDelay > 5*time.Minute {
		errs = append(errs, fmt.Errorf("PRUUV_DRAIN_DELAY=%s: want 0 to 5m", c.DrainDelay))
	}
	if c.DBMaxConns < 2 || c.DBMaxConns > 1000 {
		errs = append(errs, fmt.Errorf("PRUUV_DB_MAX_CONNS=%d: want 2 to 1000", c.DBMaxConns))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("PRUUV_PUBLIC_URL=%q: want an origin such as https://pruuv.example.com (scheme and host, no path)", c.PublicURL))
		}
	}
	if c.ClientIPHeader != "" && !validHeaderName(c.ClientIPHeader) {
		errs = append(errs, fmt.Errorf("PRUUV_CLIENT_IP_HEADER=%q: want a header name such as X-Real-IP", c.ClientIPHeader))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("PRUUV_SHUTDOWN_TIMEOUT=%s: want a positive duration", c.ShutdownTimeout))
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if c.PixelIPRate < 0 || c.PixelIPRate > MaxPixelIPRate {
		errs = append(errs, fmt.Errorf("PRUUV_PIXEL_IP_RATE=%d: want 0 (no cap) to %d events per minute", c.PixelIPRate, MaxPixelIPRate))
	}
	if c.PixelIPBurst < 1 || c.PixelIPBurst > MaxPixelIPRate {
		errs = append(errs, fmt.Errorf("PRUUV_PIXEL_IP_BURST=%d: want 1 to %d", c.PixelIPBurst, MaxPixelIPRate))
	}
	if _, err := conversion.ParseSchedule(c.ConversionsSchedule); err != nil {
		errs = append(errs, fmt.Errorf("PRUUV_CONVERSIONS_SCHEDULE: %w", err))
	}
	if c.ConversionsPoll < time.Second || c.ConversionsPoll > 10*time.Minute {
		errs = append(errs, fmt.Errorf("PRUUV_CONVERSIONS_POLL=%s: want 1s to 10m", c.ConversionsPoll))
	}
	if c.ConversionsLease < time.Second || c.ConversionsLease > time.Hour {
		errs = append(errs, fmt.Errorf("PRUUV_CONVERSIONS_LEASE=%s: want 1s to 1h", c.ConversionsLease))
	}
	for _, ev := range c.endpointVars() {
		if u, err := url.Parse(*ev.dst); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an absolute http:// or https:// URL", ev.name, *ev.dst))
		}
	}
	return errors.Join(errs...)
}

// MaxPixelIPRate bounds PRUUV_PIXEL_IP_RATE and PRUUV_PIXEL_IP_BURST.
const MaxPixelIPRate = 1_000_000

// TrustedProxyPrefixes parses TrustedProxies: comma-separated CIDRs, or bare
// addresses meaning just that address.
func (c Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(c.TrustedProxies, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("PRUUV_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8 or an address", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func validHeaderName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return s != ""
}

// Level parses LogLevel.
func (c Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("PRUUV_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// LogValue prints the configuration with secrets redacted.
func (c Config) LogValue() slog.Value {
	key := "generated in data dir"
	if c.SecretKey != "" {
		key = "[redacted]"
	}
	db := "sqlite"
	if c.DatabaseURL != "" {
		db = "postgres"
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr), slog.String("data_dir", c.DataDir), slog.String("database", db),
		slog.String("secret_key", key), slog.String("durability", c.Durability),
		slog.String("log_level", c.LogLevel), slog.String("shutdown_timeout", c.ShutdownTimeout.String()), slog.String("drain_delay", c.DrainDelay.String()),
		slog.Int("db_max_conns", c.DBMaxConns), slog.String("trusted_proxies", c.TrustedProxies),
		slog.Int("pixel_ip_rate", c.PixelIPRate), slog.Int("pixel_ip_burst", c.PixelIPBurst),
		slog.String("conversions_schedule", c.ConversionsSchedule), slog.String("conversions_poll", c.ConversionsPoll.String()),
		slog.String("conversions_lease", c.ConversionsLease.String()),
		slog.String("public_url", c.PublicURL), slog.String("client_ip_header", c.ClientIPHeader))
}
