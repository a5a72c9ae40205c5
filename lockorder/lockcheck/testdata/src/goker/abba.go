package goker

import "sync"

// A scheduler and its nodes take their locks in opposite orders in two
// functions (AB-BA).
type node struct {
	mu   sync.Mutex
	pods int
}

type scheduler struct {
	mu    sync.Mutex
	nodes []*node
}

func (s *scheduler) schedule(n *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.mu.Lock() // want `lock order inversion: node.mu acquired while scheduler.mu is held`
	n.pods++
	n.mu.Unlock()
}

func (n *node) drain(s *scheduler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pods = 0
	s.forget(n) // want `lock order inversion: scheduler.mu acquired \(in scheduler.forget\) while node.mu is held`
}

func (s *scheduler) forget(n *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range s.nodes {
		if m == n {
			s.nodes = append(s.nodes[:i], s.nodes[i+1:]...)
			return
		}
	}
}
