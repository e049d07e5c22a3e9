// Command ztream is Ztream's single binary: the hub server, the ingest tool,
// the library listing, the load generator and the swarm simulator.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"
)

const usage = `ztream — peer-assisted music streaming for the web

Usage:
  ztream serve  [--addr :8080] [--data DIR | --mongo URI] [flags]   run the hub, API and web client
  ztream ingest [--data DIR | --mongo URI] FILE|DIR...              add MP3 files to the library
  ztream tracks [--data DIR | --mongo URI] [--json]                 list the library
  ztream load   --server URL [--peers N] [--duration D] [flags]     run simulated peers against a hub
  ztream sim    [--scenario NAME|FILE] [--listeners N] [--hours H] [--seed S] [--json]
                                                                    simulate a swarm in virtual time

Run 'ztream COMMAND -h' for a command's flags. Every flag can also be set with
an environment variable, named in the flag's help.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = runServe(ctx, rest, stdout, stderr)
	case "ingest":
		err = runIngest(ctx, rest, stdout, stderr)
	case "tracks":
		err = runTracks(ctx, rest, stdout, stderr)
	case "load":
		err = runLoad(ctx, rest, stdout, stderr)
	case "sim":
		err = runSim(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ztream: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "ztream %s: %v\n", args[0], err)
		return 1
	}
}

// startCPUProfile starts writing a CPU profile to path (nothing when path
// is empty); stop ends it and closes the file, setting *retErr if that
// failed and it is nil (a failed Close can mean a truncated profile).
func startCPUProfile(path string, retErr *error) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil && *retErr == nil {
			*retErr = fmt.Errorf("--cpuprofile: %w", err)
		}
	}, nil
}

// errUsage marks an error whose message the flag package already printed.
var errUsage = errors.New("usage error")

// parseFlags parses args with fs, turning flag errors into errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// envInt returns the environment variable name as an int, or def when it is
// unset or not a number.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(envOr(name, "")); err == nil {
		return v
	}
	return def
}

// envDuration returns the environment variable name as a duration, or def
// when it is unset or not a duration.
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(envOr(name, "")); err == nil {
		return v
	}
	return def
}

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
