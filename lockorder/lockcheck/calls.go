package lockcheck

import (
	"go/types"
	"strings"

	"golang.org/x/tools/go/ssa"
)

// garrison is the import path prefix of the garrison packages whose
// blocking methods and mutexes the analyzer knows.
const garrison = "github.com/garrison-go/garrison/"

// callKind is what a call does to the lockset.
type callKind int

const (
	callOther     callKind = iota
	callLock               // acquires its receiver for writing
	callRLock              // acquires its receiver for reading
	callUnlock             // releases a write hold of its receiver
	callRUnlock            // releases a read hold of its receiver
	callBlock              // may block until another goroutine acts
	callCondWait           // sync.Cond.Wait: releases only c.L while it blocks
	callOnceDo             // sync.Once.Do: blocks while another goroutine runs f
	callCallback           // runs its func argument under a lock it holds (Guarded.With)
	callTryLock            // acquires its receiver if its result says so (TryLock: true)
	callTryRLock           // the same, for reading
	callLockErr            // acquires its receiver if its error result is nil (LockContext)
	callLockAll            // lockorder.LockAll: acquires each argument
	callUnlockAll          // lockorder.UnlockAll: releases each argument
)

// callee names the function or method a call invokes: its package path,
// the receiver's type name ("" for functions) and the method name.
type callee struct{ pkg, recv, name string }

func calleeOf(c *ssa.CallCommon) (callee, bool) {
	var fn *types.Func
	if c.IsInvoke() {
		fn = c.Method
	} else if f := c.StaticCallee(); f != nil {
		if f.Origin() != nil {
			f = f.Origin()
		}
		fn, _ = f.Object().(*types.Func)
	} else if b, ok := c.Value.(*ssa.Builtin); ok {
		return callee{name: b.Name()}, true
	}
	if fn == nil || fn.Pkg() == nil {
		return callee{}, false
	}
	fn = fn.Origin()
	out := callee{pkg: fn.Pkg().Path(), name: fn.Name()}
	if recv := fn.Type().(*types.Signature).Recv(); recv != nil {
		t := types.Unalias(recv.Type())
		if p, ok := t.(*types.Pointer); ok {
			t = types.Unalias(p.Elem())
		}
		if n, ok := t.(*types.Named); ok {
			out.recv = n.Origin().Obj().Name()
		}
	}
	return out, true
}

// mutexTypes are the receiver types whose Lock and Unlock methods the
// lockset follows, by package path.
var mutexTypes = map[string]map[string]bool{
	"sync":                 {"Mutex": true, "RWMutex": true, "Locker": true},
	garrison + "lockorder": {"Mutex": true, "RWMutex": true, "TimedMutex": true},
}

// blockingCalls are calls that may wait for another goroutine or the
// network, keyed by package path, then "Recv.Method" or "Func". The value
// is how a report names the operation.
var blockingCalls = map[string]map[string]string{
	"sync": {
		"WaitGroup.Wait": "sync.WaitGroup.Wait",
	},
	"time": {"Sleep": "time.Sleep"},
	"net": {
		"Dial": "net.Dial", "DialTimeout": "net.DialTimeout",
		"Dialer.Dial": "net.Dialer.Dial", "Dialer.DialContext": "net.Dialer.DialContext",
		"Conn.Read": "net.Conn.Read", "Conn.Write": "net.Conn.Write",
		"TCPConn.Read": "net.TCPConn.Read", "TCPConn.Write": "net.TCPConn.Write",
		"UDPConn.Read": "net.UDPConn.Read", "UDPConn.Write": "net.UDPConn.Write",
		"UnixConn.Read": "net.UnixConn.Read", "UnixConn.Write": "net.UnixConn.Write",
		"Listener.Accept": "net.Listener.Accept", "TCPListener.Accept": "net.TCPListener.Accept",
	},
	"net/http": {
		"Get": "http.Get", "Post": "http.Post", "Head": "http.Head", "PostForm": "http.PostForm",
		"Client.Do": "http.Client.Do", "Client.Get": "http.Client.Get",
		"Client.Post": "http.Client.Post", "Client.Head": "http.Client.Head",
		"Client.PostForm":        "http.Client.PostForm",
		"Server.Shutdown":        "http.Server.Shutdown",
		"RoundTripper.RoundTrip": "http.RoundTripper.RoundTrip",
	},
	"os/exec": {
		"Cmd.Run": "exec.Cmd.Run", "Cmd.Wait": "exec.Cmd.Wait",
		"Cmd.Output": "exec.Cmd.Output", "Cmd.CombinedOutput": "exec.Cmd.CombinedOutput",
	},
	"golang.org/x/sync/errgroup":  {"Group.Wait": "errgroup.Group.Wait"},
	"golang.org/x/sync/semaphore": {"Weighted.Acquire": "semaphore.Weighted.Acquire"},
	"golang.org/x/time/rate":      {"Limiter.Wait": "rate.Limiter.Wait", "Limiter.WaitN": "rate.Limiter.WaitN"},
	garrison + "lockorder": {
		"WaitGroup.Wait": "lockorder.WaitGroup.Wait",
	},
	garrison + "changuard": {
		"Chan.Send": "changuard.Chan.Send", "Chan.Recv": "changuard.Chan.Recv",
		"Chan.Drain": "changuard.Chan.Drain",
		"Owner.Post": "changuard.Owner.Post", "Owner.Stop": "changuard.Owner.Stop",
		"Owner.Shutdown": "changuard.Owner.Shutdown", "Call": "changuard.Call",
		"Owner.Close": "changuard.Owner.Close",
	},
	garrison + "spawn": {
		"Spawner.Go": "spawn.Spawner.Go", "Spawner.GoKey": "spawn.Spawner.GoKey",
		"Spawner.Wait": "spawn.Spawner.Wait", "Spawner.Shutdown": "spawn.Spawner.Shutdown",
		"Submit": "spawn.Submit", "Handle.Wait": "spawn.Handle.Wait",
		"Keyed.Wait": "spawn.Keyed.Wait",
	},
	garrison + "timeout": {
		"Detacher.Wait": "timeout.Detacher.Wait", "Detacher.Shutdown": "timeout.Detacher.Shutdown",
	},
}

// guardedCallbacks are the garrison calls that run a func(*T) argument
// while holding a lock (Guarded) or on an owner goroutine (Owner), mapped
// to the index of that argument (receiver first for methods).
var guardedCallbacks = map[string]int{
	"Guarded.With":        1,
	"Guarded.Read":        1,
	"Guarded.TryWith":     1,
	"Guarded.WithContext": 2,
	"WithResult":          1,
	"Owner.Post":          1,
	"Call":                2,
}

// classify says what a call does, and for blocking calls how to name it.
func classify(c *ssa.CallCommon) (callKind, string) {
	ce, ok := calleeOf(c)
	if !ok {
		return callOther, ""
	}
	if mutexTypes[ce.pkg][ce.recv] {
		switch ce.name {
		case "Lock":
			return callLock, ""
		case "RLock":
			return callRLock, ""
		case "Unlock":
			return callUnlock, ""
		case "RUnlock":
			return callRUnlock, ""
		case "TryLock":
			return callTryLock, ""
		case "TryRLock":
			return callTryRLock, ""
		case "LockContext", "LockTimeout":
			return callLockErr, ""
		}
		return callOther, ""
	}
	qual := ce.name
	if ce.recv != "" {
		qual = ce.recv + "." + ce.name
	}
	switch {
	case ce.pkg == garrison+"lockorder" && qual == "LockAll":
		return callLockAll, ""
	case ce.pkg == garrison+"lockorder" && qual == "UnlockAll":
		return callUnlockAll, ""
	case (ce.pkg == "sync" || ce.pkg == garrison+"lockorder") && qual == "Cond.Wait":
		return callCondWait, short(ce.pkg) + ".Cond.Wait"
	case (ce.pkg == "sync" || ce.pkg == garrison+"lockorder") && qual == "Once.Do":
		return callOnceDo, short(ce.pkg) + ".Once.Do"
	case ce.pkg == garrison+"changuard" && guardedCallbacks[qual] > 0 && strings.HasPrefix(qual, "Guarded.") || qual == "WithResult" && ce.pkg == garrison+"changuard":
		return callCallback, "changuard." + qual
	}
	if d, ok := blockingCalls[ce.pkg][qual]; ok {
		return callBlock, d
	}
	return callOther, ""
}

func short(path string) string { return path[strings.LastIndex(path, "/")+1:] }
