// Command testapp is the program inside Gantry's test container image: a
// static binary packed FROM scratch (see internal/testimage), so it is also its
// own health check command, since the image has no shell or curl.
//
// Usage (flags may follow the arguments):
//
//	testapp serve [--port N] [--ignore-sigterm]  HTTP server (port also from $PORT, default 8080):
//	    /            JSON {hostname, args, env}
//	    /health      200 "ok", or 500 once told to fail (/fail; /recover undoes it),
//	                 while $TESTAPP_UNHEALTHY=1, or while the file named by $TESTAPP_UNHEALTHY_FILE exists
//	    /exit?code=N answers, then exits with code N
//	testapp sleep DURATION [--ignore-sigterm]   sleep ("3600" seconds or "1m30s"), exit 0
//	testapp exit CODE [--after DURATION]        exit with CODE, after DURATION
//	testapp print-env                           print the environment, sorted, one per line
//	testapp cat FILE                            print FILE
//	testapp write FILE CONTENT                  write CONTENT to FILE (exit 1 if it cannot)
//	testapp metadata [PATH]                     GET $ECS_CONTAINER_METADATA_URI_V4 + PATH (default "/task"), print it
//	testapp healthcheck URL                     exit 0 if GET URL answers 2xx within 5s, else 1
//	testapp alloc MIB                           allocate and touch MIB MiB of memory, then sleep (OOM tests)
//
// On SIGTERM or SIGINT it prints a line and exits 0, unless --ignore-sigterm
// (or $TESTAPP_IGNORE_SIGTERM=1) is given: then only SIGKILL stops it. As
// PID 1 in a container, a process without a handler would ignore SIGTERM.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail(2, "usage: testapp serve|sleep|exit|print-env|cat|write|metadata|healthcheck|alloc ...")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	port := fs.Int("port", envInt("PORT", 8080), "serve: listen port")
	ignoreTerm := fs.Bool("ignore-sigterm", os.Getenv("TESTAPP_IGNORE_SIGTERM") == "1", "ignore SIGTERM and SIGINT")
	after := fs.Duration("after", 0, "exit: delay before exiting")
	args := parse(fs, os.Args[2:])
	arg := func(i int) string {
		if i >= len(args) {
			fail(2, "testapp %s: missing argument %d", os.Args[1], i+1)
		}
		return args[i]
	}
	handleSignals(*ignoreTerm)

	switch os.Args[1] {
	case "serve":
		serve(*port)
	case "sleep":
		d := duration(arg(0))
		fmt.Printf("sleeping for %v\n", d) // after handleSignals: a test may signal now
		time.Sleep(d)
	case "exit":
		code, err := strconv.Atoi(arg(0))
		if err != nil {
			fail(2, "testapp exit: %v", err)
		}
		time.Sleep(*after)
		fmt.Printf("exiting with code %d\n", code)
		os.Exit(code)
	case "print-env":
		env := os.Environ()
		slices.Sort(env)
		fmt.Println(strings.Join(env, "\n"))
	case "cat":
		b, err := os.ReadFile(arg(0))
		if err != nil {
			fail(1, "%v", err)
		}
		os.Stdout.Write(b)
	case "write":
		if err := os.WriteFile(arg(0), []byte(arg(1)), 0o644); err != nil {
			fail(1, "%v", err)
		}
	case "metadata":
		path := "/task"
		if len(args) > 0 {
			path = args[0]
		}
		get(os.Getenv("ECS_CONTAINER_METADATA_URI_V4")+path, true)
	case "healthcheck":
		get(arg(0), false)
	case "alloc":
		alloc(arg(0))
	default:
		fail(2, "testapp: unknown mode %q", os.Args[1])
	}
}

func serve(port int) {
	var failing atomic.Bool
	failing.Store(os.Getenv("TESTAPP_UNHEALTHY") == "1")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"hostname": host, "args": os.Args, "env": env})
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		_, err := os.Stat(os.Getenv("TESTAPP_UNHEALTHY_FILE"))
		if failing.Load() || (os.Getenv("TESTAPP_UNHEALTHY_FILE") != "" && err == nil) {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		failing.Store(true)
		fmt.Fprintln(w, "health now fails")
	})
	mux.HandleFunc("/recover", func(w http.ResponseWriter, r *http.Request) {
		failing.Store(false)
		fmt.Fprintln(w, "health now passes")
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, "code: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "exiting with code %d\n", code)
		w.(http.Flusher).Flush()
		go func() {
			time.Sleep(50 * time.Millisecond) // let the response leave
			fmt.Printf("exiting with code %d\n", code)
			os.Exit(code)
		}()
	})
	fmt.Printf("serving on :%d\n", port)
	fail(1, "%v", http.ListenAndServe(":"+strconv.Itoa(port), mux))
}

// get prints the body of GET url and exits non-zero unless it answered 2xx;
// with show false it prints only failures.
func get(url string, show bool) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fail(1, "%v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		fail(1, "GET %s: %s: %s", url, resp.Status, body)
	}
	if show {
		os.Stdout.Write(body)
	}
}

func alloc(mib string) {
	n, err := strconv.Atoi(mib)
	if err != nil {
		fail(2, "testapp alloc: %v", err)
	}
	var keep [][]byte
	for i := range n {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
		if i%16 == 0 {
			fmt.Printf("allocated %d MiB\n", i+1)
		}
	}
	fmt.Printf("allocated %d MiB\n", len(keep))
	select {}
}

func handleSignals(ignore bool) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range ch {
			if ignore {
				fmt.Printf("ignoring %v\n", sig)
				continue
			}
			fmt.Printf("received %v, exiting\n", sig)
			os.Exit(0)
		}
	}()
}

// parse parses flags wherever they appear among the arguments and returns the
// arguments.
func parse(fs *flag.FlagSet, args []string) []string {
	var pos []string
	for {
		fs.Parse(args)
		if fs.NArg() == 0 {
			return pos
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func duration(s string) time.Duration {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		fail(2, "testapp: %v", err)
	}
	return d
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}
