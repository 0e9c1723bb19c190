package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pruuv/pruuv/internal/cli"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

func TestUserCreateFromStdin(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	env := map[string]string{}
	for _, kv := range pruuvtest.Env(cfg) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	run := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := cli.Run(context.Background(), args, cli.Env{Getenv: func(k string) string { return env[k] }, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut})
		return out.String(), err
	}
	if _, err := run("short\n", "user", "create", "--email", "ann@example.com", "--password-stdin"); err == nil {
		t.Fatal("a short password was accepted")
	}
	if out, err := run("correct horse battery\n", "user", "create", "--email", "Ann@Example.com", "--password-stdin"); err != nil || !strings.Contains(out, "ann@example.com") {
		t.Fatalf("user create: %q, %v", out, err)
	}
	if _, err := run("", "user", "create", "--email", "ann@example.com", "--password", "another long password"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate user: %v", err)
	}
	if _, err := run("x\n", "user", "create", "--email", "bob@example.com", "--password", "p", "--password-stdin"); err == nil {
		t.Fatal("both password flags accepted")
	}
	if _, err := run("a brand new password\n", "user", "set-password", "--email", "nobody@example.com", "--password-stdin"); err == nil {
		t.Fatal("set-password of an unknown user succeeded")
	}
	if _, err := run("a brand new password\n", "user", "set-password", "--email", "ann@example.com", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
}
