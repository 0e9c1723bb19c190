// Package site describes where the Pixel may run: a site's allowed origins,
// written exactly as browsers send them in the Origin header. The snippets
// that install the script are in package pixel.
package site

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxOrigins is how many origins one site may allow.
const MaxOrigins = 100

// ParseOrigin returns s as a browser serialises an origin — scheme://host
// with an optional port, lower case, the scheme's default port dropped — or
// says why it is not one. Only https is accepted, and plain http only for a
// loopback host (localhost, *.localhost, 127.0.0.0/8, ::1) so that pages can
// be tried out on a developer's machine.
func ParseOrigin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("an origin is empty")
	}
	if !strings.Contains(s, "://") {
		return "", fmt.Errorf("%q has no scheme: write https://%s", s, strings.TrimRight(s, "/"))
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", fmt.Errorf("%q: an origin must be https:// (or http:// for localhost)", s)
	}
	if u.User != nil || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("%q: an origin is only scheme://host[:port], with no path, query or user, e.g. https://shop.example", s)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", fmt.Errorf("%q has no host", s)
	}
	ip, ipErr := netip.ParseAddr(host)
	isIP := ipErr == nil
	switch {
	case isIP && ip.Zone() != "":
		return "", fmt.Errorf("%q: an address with a zone cannot be an origin", s)
	case isIP:
		ip = ip.Unmap()
		host = ip.String()
	case strings.Contains(host, "*"):
		return "", fmt.Errorf("%q: wildcards are not supported; list each origin", s)
	default:
		for _, c := range []byte(host) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
				return "", fmt.Errorf("%q: write the host in ASCII (an international name in its xn-- form), letters, digits, '-' and '.' only", s)
			}
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: the port must be 1 to 65535", s)
		}
		port = strconv.Itoa(n)
		if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
			port = ""
		}
	}
	if scheme == "http" && !loopback(host, ip, isIP) {
		return "", fmt.Errorf("%q: plain http is allowed only for localhost; use https://", s)
	}
	if isIP && ip.Is6() {
		host = "[" + host + "]"
	}
	out := scheme + "://" + host
	if port != "" {
		out += ":" + port
	}
	return out, nil
}

func loopback(host string, ip netip.Addr, isIP bool) bool {
	if isIP {
		return ip.IsLoopback()
	}
	host = strings.TrimSuffix(host, ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// ParseOrigins parses origins given as repeated flags, each possibly a
// comma-separated list, and returns them normalised, without repeats, in the
// order given.
func ParseOrigins(args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, a := range args {
		for _, f := range strings.Split(a, ",") {
			if strings.TrimSpace(f) == "" {
				continue
			}
			o, err := ParseOrigin(f)
			if err != nil {
				return nil, err
			}
			if !seen[o] {
				seen[o] = true
				out = append(out, o)
			}
		}
	}
	if len(out) > MaxOrigins {
		return nil, fmt.Errorf("at most %d origins per site", MaxOrigins)
	}
	return out, nil
}

// DefaultServerURL stands in for the Pruuv server's public address in a
// snippet when none is given.
const DefaultServerURL = "https://pruuv.example.com"
