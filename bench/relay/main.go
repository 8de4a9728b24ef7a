// Command relay is the benchmark harness's floor: a bare TCP relay with
// the buffers s3seal uses (1 MiB batches), optionally running AES-256-GCM
// over every byte it forwards (sealed into a scratch buffer, so the bytes
// themselves pass unchanged and the client still talks to the store). Its
// CPU time per GiB is what any encrypting proxy on this machine must at
// least spend: the kernel's loopback copies plus the cipher, with no HTTP,
// no signatures and no allocation.
//
// It prints "listening on ADDR" and relays every connection to -target
// until killed. The harness builds and runs it (bench/floor.go).
package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"

	"github.com/s3seal/s3seal/envelope"
)

func main() {
	target := flag.String("target", "", "host:port to relay to")
	gcm := flag.Bool("gcm", false, "also seal every byte relayed with AES-256-GCM (output discarded)")
	flag.Parse()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	os.Stdout.Sync()
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go relay(c, *target, *gcm)
	}
}

func relay(client net.Conn, target string, gcm bool) {
	defer client.Close()
	store, err := net.Dial("tcp", target)
	if err != nil {
		log.Print(err)
		return
	}
	defer store.Close()
	done := make(chan struct{})
	go func() {
		pump(store, client, gcm)
		store.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	pump(client, store, gcm)
	client.(*net.TCPConn).CloseWrite()
	<-done
}

// pump copies src to dst through a 1 MiB buffer with plain read and write
// calls: the wrappers keep io.Copy from splicing, which a proxy that must
// see the bytes cannot do.
func pump(dst io.Writer, src io.Reader, gcm bool) {
	var aead cipher.AEAD
	if gcm {
		key := make([]byte, envelope.KeySize)
		if _, err := rand.Read(key); err != nil {
			log.Fatal(err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			log.Fatal(err)
		}
		if aead, err = cipher.NewGCM(block); err != nil {
			log.Fatal(err)
		}
	}
	buf := make([]byte, envelope.BatchSize)
	scratch := make([]byte, envelope.BatchSize+envelope.BatchSize/envelope.SegmentSize*envelope.TagSize+envelope.TagSize)
	nonce := make([]byte, envelope.NonceSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if aead != nil {
				// One nonce for everything: the output is thrown away,
				// only the cipher's work is wanted.
				out := scratch[:0]
				for off := 0; off < n; off += envelope.SegmentSize {
					out = aead.Seal(out, nonce, buf[off:min(n, off+envelope.SegmentSize)], nil)
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
