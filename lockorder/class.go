package lockorder

import (
	"strconv"
	"sync/atomic"
)

// A Class is a lock class: the unit the order checker reasons about. All
// mutexes that play the same role (one per account, one per cache shard)
// should share one Class, so that "account before ledger" learned on one
// account applies to all of them and the graph stays small.
//
// A mutex without a class is its own class, named after its kind, a
// sequence number and the file:line of its first acquisition. Such
// per-instance classes are dropped from the graph when their mutex is
// garbage-collected.
type Class struct {
	name string
	rank int
	id   uint64
	//lint:ignore U1000 empty in production builds, the graph node in checking builds
	classState
}

var classIDs atomic.Uint64

// NewClass returns a new lock class. The name appears in reports. A
// non-zero rank orders the class against other ranked classes: a lock of a
// ranked class may only be acquired while every ranked lock the goroutine
// holds has a strictly lower rank, and LockAll takes locks in ascending
// rank (one LockAll call may hold several classes of equal rank). Rank 0
// means unranked. NewClass is cheap in every build (one small
// allocation) and safe for concurrent use.
func NewClass(name string, rank int) *Class {
	c := &Class{name: name, rank: rank, id: classIDs.Add(1)}
	if c.name == "" {
		c.name = "class#" + strconv.FormatUint(c.id, 10)
	}
	return c
}

// Name returns the name given to NewClass (or generated for a per-instance
// class).
func (c *Class) Name() string { return c.name }

// Rank returns the class's rank; 0 means unranked.
func (c *Class) Rank() int { return c.rank }

// String returns the name, with the rank when it is set.
func (c *Class) String() string {
	if c.rank == 0 {
		return c.name
	}
	return c.name + " (rank " + strconv.Itoa(c.rank) + ")"
}
