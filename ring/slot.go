// Package ring maps keys to slots and slots to nodes. It does no I/O: given
// the same inputs it always returns the same answer.
package ring

// Slots is the number of hash slots, as in Redis Cluster.
const Slots = 16384

// KeySlot returns the slot of key exactly as Redis Cluster computes it:
// CRC16-XMODEM of the key modulo 16384, or of the hash tag when the key holds
// a non-empty {tag} (the text between the first '{' and the first '}' after it).
func KeySlot(key []byte) uint16 {
	if i := indexByte(key, '{'); i >= 0 {
		if j := indexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) & (Slots - 1)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// crc16 is CRC16-XMODEM (polynomial 0x1021, initial value 0), table driven.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, x := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^x]
	}
	return crc
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()
