//go:build unix

package store

import "syscall"

// canMap: mapBytes maps memory (unless the system refuses).
const canMap = true

// mapBytes maps n bytes of zeroed anonymous memory; nil when the system
// refuses (the caller then uses the heap).
func mapBytes(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil
	}
	return b
}

func unmapBytes(b []byte) {
	if err := syscall.Munmap(b); err != nil {
		panic("store: munmap: " + err.Error())
	}
}
