package siege

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"time"
)

// The botnet runs in a child process (this same program, re-executed):
// with thousands of connections, an attacker sharing the twins' Go
// runtime would also share their scheduler and network poller, and the
// siege would measure that contention as much as the defence. The child
// has descriptors of its own, so the fds-capped phase caps the twins', as
// a real server near its limit would be, and not the attacker's.

// botnetChildEnv carries the child's orders; its presence makes the
// program a botnet child (see RunChildIfAsked).
const botnetChildEnv = "GARRISON_SIEGE_BOTNET"

type botnetOrders struct {
	Addr     string        `json:"addr"`
	Srcs     []netip.Addr  `json:"srcs"`
	Kinds    []botKind     `json:"kinds"`
	Conns    int           `json:"conns"`
	Limit    int           `json:"limit"`
	Ramp     time.Duration `json:"ramp"`
	Redial   time.Duration `json:"redial"`
	Duration time.Duration `json:"duration"`
}

// RunChildIfAsked runs the botnet and returns true when this process was
// started as the siege's botnet child; otherwise it returns false at once.
// Call it first thing in main (and in TestMain, for the tests' children).
func RunChildIfAsked() bool {
	v, ok := os.LookupEnv(botnetChildEnv)
	if !ok {
		return false
	}
	var o botnetOrders
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		fmt.Fprintln(os.Stderr, "siege botnet child:", err)
		os.Exit(2)
	}
	raiseFDs()
	ctx, cancel := context.WithTimeout(context.Background(), o.Duration)
	defer cancel()
	st := botnet(ctx, o.Addr, o.Srcs, o.Kinds, o.Conns, o.Limit, o.Ramp, o.Redial)
	if err := json.NewEncoder(os.Stdout).Encode(st); err != nil {
		fmt.Fprintln(os.Stderr, "siege botnet child:", err)
		os.Exit(2)
	}
	return true
}

// botnetAway runs botnet in a child process for d, or in this process if
// no child can be started (the note says which).
func botnetAway(ctx context.Context, d time.Duration, o botnetOrders) (st *BotnetStats, note string) {
	o.Duration = d
	exe, err := os.Executable()
	if err == nil {
		var orders []byte
		orders, err = json.Marshal(o)
		if err == nil {
			// The child stops by itself after d; the margin only bounds a
			// child that hangs.
			cctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(cctx, exe)
			cmd.Env = append(os.Environ(), botnetChildEnv+"="+string(orders))
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err = cmd.Run(); err == nil {
				st = &BotnetStats{}
				if err = json.Unmarshal(out.Bytes(), st); err == nil {
					return st, "the botnet ran in a child process of its own"
				}
			}
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(errOut.Bytes()))
		}
	}
	actx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return botnet(actx, o.Addr, o.Srcs, o.Kinds, o.Conns, o.Limit, o.Ramp, o.Redial),
		fmt.Sprintf("the botnet ran in this process (no child: %v)", err)
}
