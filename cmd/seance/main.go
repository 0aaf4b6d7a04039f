// Command seance is a live-streaming relay for public council sessions:
// it takes a session in over RTMP, pushes it to YouTube and other RTMP
// servers, and shows IT staff how the stream is doing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/seance-relay/seance/configs"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, "seance", buildVersion())
			return 0
		case "check-config":
			return checkConfig(args[1:], stdout, stderr)
		case "healthcheck":
			return healthcheck(args[1:], stdout, stderr)
		case "init":
			return initCommand(args[1:], initIO{stdin: os.Stdin, terminal: stdinIsTerminal(), stdout: stdout, stderr: stderr, getenv: os.LookupEnv})
		case "help", "-h", "-help", "--help":
			usage(stdout)
			return 0
		}
	}
	fs := flag.NewFlagSet("seance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr) }
	path := fs.String("config", "", "YAML config file (default: the embedded demo config)")
	logFormat := fs.String("log-format", "", "log format: json or console (overrides log.format)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn or error (overrides log.level)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seance: unexpected argument %q\n", fs.Arg(0))
		usage(stderr)
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "seance: %v\n", err)
		return 1
	}
	if *logFormat != "" {
		cfg.Log.Format = *logFormat
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "seance: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := serve(ctx, cfg, *path, hup, log); err != nil {
		log.Error().Err(err).Msg("seance stopped")
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `seance — live relay for public council sessions

Usage:
  seance [-config FILE] [-log-format json|console] [-log-level LEVEL]
                                 serve (no file: the embedded demo config)
  seance check-config -config FILE [-env-file FILE]
                                 validate a config file and exit (with the
                                 variables of an env file, as systemd reads it)
  seance init [-config FILE] [-env-file FILE] -channel NAME [-title "…"]
              [-base-url URL] [-youtube-key-env VAR] [-force]
                                 write a first config and its secrets
                                 (asks for what is missing in a terminal)
  seance healthcheck [-url URL]  exit 0 if the relay answers on /healthz
                                 (for container health checks)
  seance version                 print the version
`)
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file to check")
	envFile := fs.String("env-file", "", "read these KEY=value variables first (systemd's EnvironmentFile=)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "seance check-config: -config FILE is required")
		return 2
	}
	if *envFile != "" {
		if err := setEnvFile(*envFile); err != nil {
			fmt.Fprintf(stderr, "seance check-config: %v\n", err)
			return 1
		}
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d channel(s))\n", *path, len(cfg.Channels))
	return 0
}

// healthcheck asks a running relay's /healthz, for container health checks
// in images without a shell or curl.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "health URL of the relay's public listener")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(*url)
	if err != nil {
		fmt.Fprintf(stderr, "seance healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "seance healthcheck: %s answered %s\n", *url, resp.Status)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func loadConfig(path string) (*configs.Config, error) {
	if path == "" {
		return configs.Default(), nil
	}
	cfg, err := configs.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

var errShutdownTimeout = errors.New("components did not stop within 5 s")
