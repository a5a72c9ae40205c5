// Command siege attacks a naive Go service and the same service built with
// garrison, side by side, and prints what each attack did to each of them.
//
//	go run ./examples/siege                 # every scenario, about 2½ minutes
//	go run ./examples/siege -quick          # about 1½ minutes
//	go run ./examples/siege -scenario race  # one scenario
//	go run ./examples/siege -json           # machine-readable results
//	go run ./examples/siege -report siege.html
//	go run ./examples/siege -from run.json -report siege.html   # redraw a saved -json run
//
// Both twins run in this process on 127.0.0.1 ephemeral ports; attackers
// use 127.0.0.2 and up, and the botnet scenarios 127.0.1.1 and up (Linux
// routes all of 127.0.0.0/8 to the loopback interface). Every attack is bounded in count and in time and
// stops by itself. The exit status is 0 when every hardened figure beats
// its naive twin and 1 otherwise, so the demo is also a test.
//
// A naive twin that deadlocked or hung is torn down before the next
// scenario (see package naive), so the siege exits on its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/garrison-go/garrison/examples/siege/internal/siege"
)

func main() {
	// The botnet scenarios re-execute this program as their attacker.
	if siege.RunChildIfAsked() {
		return
	}
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `siege attacks a naive Go service and the same service built with garrison,
side by side on loopback, with the threats garrison defends against (spawn and
connection floods, a botnet, HTTP/2 rapid reset, chosen-key eviction of a
login limit, a deadlock, lost updates, a stuck upstream, a capacity drop, a
sheddable overload), and prints what each
attack did to each twin. A full run takes about 2½ minutes, -quick about 1½.
It exits 0 only when every hardened figure beats its naive twin or its bound.

Usage: go run ./examples/siege [flags]

`)
		flag.PrintDefaults()
	}
	quick := flag.Bool("quick", false, "shorter attacks, as CI runs them")
	scenario := flag.String("scenario", "", "run one scenario: "+strings.Join(siege.Names(), ", "))
	asJSON := flag.Bool("json", false, "print the results as JSON instead of the table")
	report := flag.String("report", "", "also write a self-contained HTML report with latency charts to this file")
	from := flag.String("from", "", "attack nothing: read the results of an earlier -json run from this file and print or draw them")
	logPath := flag.String("log", "", "write the hardened twin's log (sampled refusals, lock-order and watchdog reports) to this file")
	flag.Parse()

	var logFile *os.File
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer f.Close()
		logFile = f
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := siege.Options{Quick: *quick, Scenario: *scenario, Progress: os.Stderr}
	if logFile != nil {
		opts.Log = logFile
	}
	var res *siege.Result
	var err error
	if *from != "" {
		res, err = readResults(*from)
	} else {
		res, err = siege.Run(ctx, opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *asJSON {
		err = siege.WriteJSON(os.Stdout, res)
	} else {
		err = siege.WriteTable(os.Stdout, res)
	}
	if err == nil && *report != "" {
		err = writeReport(*report, res)
		if err == nil {
			fmt.Fprintln(os.Stderr, "siege: report written to", *report)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if !res.OK {
		os.Exit(1)
	}
}

func writeReport(path string, res *siege.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := siege.WriteHTML(f, res); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readResults(path string) (*siege.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return siege.ReadJSON(f)
}
