// Command relay is the benchmark harness's floor: a relay between the
// client and the store that moves bytes as cheaply as any HTTP proxy on
// this machine could, so that s3seal's CPU per GiB divided by the relay's
// says how much of s3seal's is left to remove (issue #25).
//
//   - Without -gcm it splices: io.Copy between two TCP connections uses
//     splice(2) on Linux, so the bytes never enter user space. This is the
//     cost of the kernel's loopback path alone; no proxy that must see the
//     bytes can go below it.
//   - With -gcm it is the cheapest proxy that must see every byte: it
//     reads each HTTP message's header, then its body (Content-Length) in
//     whole batches of envelope.BatchSize with as many reads as the socket
//     needs, seals every batch with AES-256-GCM in envelope.SegmentSize
//     segments out of place into a second buffer (as s3seal does), and
//     writes the batch with one call. The sealed output is thrown away and
//     the original bytes are forwarded, so the client still talks to the
//     store. There is no per-read framing, no signature, no allocation per
//     request.
//
// An earlier version forwarded whatever each read returned through a 1 MiB
// buffer; that costs a write per read, and s3seal, which reads whole
// batches, measured below it on GET: a floor above what it bounds.
//
// It prints "listening on ADDR" and relays every connection to -target
// until killed. The harness builds and runs it (bench/floor.go). With
// -gcm it understands only what the harness sends: requests and responses
// with a Content-Length (or none, and no body), not chunked bodies.
package main

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"

	"github.com/s3seal/s3seal/envelope"
)

func main() {
	target := flag.String("target", "", "host:port to relay to")
	gcm := flag.Bool("gcm", false, "read HTTP bodies in whole batches and seal every byte relayed with AES-256-GCM (output discarded); without it, splice")
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
		go relay(c.(*net.TCPConn), *target, *gcm)
	}
}

func relay(client *net.TCPConn, target string, gcm bool) {
	defer client.Close()
	c, err := net.Dial("tcp", target)
	if err != nil {
		log.Print(err)
		return
	}
	store := c.(*net.TCPConn)
	defer store.Close()
	// The methods of the requests sent, so that the response pump knows a
	// HEAD's answer has no body.
	methods := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		if gcm {
			pumpHTTP(client, store, nil, methods)
		} else {
			_, _ = io.Copy(client, store) // splice(2)
		}
		_ = client.CloseWrite()
		close(done)
	}()
	if gcm {
		pumpHTTP(store, client, methods, nil)
	} else {
		_, _ = io.Copy(store, client)
	}
	_ = store.CloseWrite()
	<-done
}

// sealer runs AES-256-GCM over batches the way s3seal does, into a buffer
// of its own.
type sealer struct {
	aead    cipher.AEAD
	nonce   [envelope.NonceSize]byte
	scratch []byte
}

func newSealer() *sealer {
	key := make([]byte, envelope.KeySize)
	if _, err := rand.Read(key); err != nil {
		log.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		log.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		log.Fatal(err)
	}
	return &sealer{aead: aead, scratch: make([]byte, 0, envelope.BatchSize+envelope.BatchSize/envelope.SegmentSize*envelope.TagSize)}
}

func (s *sealer) seal(b []byte) {
	// One nonce for everything: the output is thrown away, only the
	// cipher's work is wanted.
	out := s.scratch[:0]
	for off := 0; off < len(b); off += envelope.SegmentSize {
		out = s.aead.Seal(out, s.nonce[:], b[off:min(len(b), off+envelope.SegmentSize)], nil)
	}
}

// pumpHTTP forwards the HTTP messages read from src to dst: a request
// stream if sent is not nil (each request's method goes to it), a response
// stream if it reads the requests' methods from methods.
func pumpHTTP(dst io.Writer, src io.Reader, sent chan<- string, methods <-chan string) {
	br := bufio.NewReaderSize(src, 64<<10)
	s := newSealer()
	buf := make([]byte, envelope.BatchSize)
	var hdr []byte
	for {
		var err error
		hdr, err = readHeader(br, hdr[:0])
		if err != nil {
			if err != io.EOF {
				log.Print(err)
			}
			return
		}
		n, err := bodyLength(hdr, sent, methods)
		if err != nil {
			log.Print(err)
			return
		}
		if _, err := dst.Write(hdr); err != nil {
			return
		}
		for n > 0 {
			b := buf[:min(n, int64(len(buf)))]
			if _, err := io.ReadFull(br, b); err != nil {
				return
			}
			s.seal(b)
			if _, err := dst.Write(b); err != nil {
				return
			}
			n -= int64(len(b))
		}
	}
}

// readHeader appends the next message's start line and header fields,
// with the blank line that ends them, to hdr.
func readHeader(br *bufio.Reader, hdr []byte) ([]byte, error) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF && len(hdr) == 0 && len(line) == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("reading a header: %w", err)
		}
		if len(hdr) == 0 && len(line) <= 2 {
			continue // a stray line break between messages
		}
		hdr = append(hdr, line...)
		if len(hdr) > 1<<20 {
			return nil, errors.New("header too long")
		}
		if len(line) <= 2 { // the blank line after the fields
			return hdr, nil
		}
	}
}

// bodyLength is the length of the body after hdr.
func bodyLength(hdr []byte, sent chan<- string, methods <-chan string) (int64, error) {
	start, fields, _ := bytes.Cut(hdr, []byte("\r\n"))
	if sent != nil {
		method, _, _ := bytes.Cut(start, []byte(" "))
		sent <- string(method)
	} else {
		// "HTTP/1.1 200 OK"
		_, rest, _ := bytes.Cut(start, []byte(" "))
		code, _, _ := bytes.Cut(rest, []byte(" "))
		status, err := strconv.Atoi(string(code))
		if err != nil {
			return 0, fmt.Errorf("bad status line %q", start)
		}
		if status < 200 {
			return 0, nil // interim: the request's answer is still to come
		}
		if m := <-methods; m == "HEAD" || status == 204 || status == 304 {
			return 0, nil
		}
	}
	n := int64(0)
	for line := range bytes.SplitSeq(fields, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
			n = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, fmt.Errorf("transfer-encoding %q: not supported", value)
		}
	}
	return n, nil
}
