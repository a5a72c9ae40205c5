//go:build !lockorder && !race

package lockorder

import "sync"

const checking = false

// eventMeta is empty in production builds.
type eventMeta struct{}

func waitEvent[T any](*T, *eventMeta, string, sync.Locker) {}
func unblockEvent[T any](*T, *eventMeta, string)           {}
func beginEvent[T any](*T, *eventMeta, string)             {}

type onceImpl = sync.Once
