//go:build !unix

package store

// Without mmap every block comes from the Go heap.
const canMap = false

func mapBytes(int) []byte { return nil }

func unmapBytes([]byte) {}
