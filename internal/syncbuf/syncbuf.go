// Package syncbuf is a bytes.Buffer that several goroutines may write at once: the tests
// collect a logger's or a child process's output in one while it runs.
package syncbuf

import (
	"bytes"
	"sync"
)

type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
