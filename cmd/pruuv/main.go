// Command pruuv is the Pruuv server and its operator CLI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pruuv/pruuv/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], cli.Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	var uerr *cli.UsageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &uerr):
		fmt.Fprintf(os.Stderr, "pruuv: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "pruuv: %v\n", err)
		os.Exit(1)
	}
}
