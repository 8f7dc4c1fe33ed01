// Command orgsvc runs the organization management service.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/orgsvc/orgsvc/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
