// Command secured produces checksummed records and consumes them back in a group with
// github.com/twmb/franz-go over TLS, optionally with SASL (PLAIN or SCRAM-SHA-256/512), so the
// tests can show the proxy in front of a secured cluster serving a Go client as a broker would.
//
// Records are "seq:payload:crc32" keyed "k<seq % 97>" (tests/support/records.py). The run
// prints one JSON line {"produced": n, "consumed": n, "verified": n, "bad": n} and exits 0
// only when every record came back intact and exactly once; 2 on bad flags.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const deadline = 90 * time.Second

func value(seq int) string {
	unit := fmt.Sprintf("%08d", seq)
	payload := strings.Repeat(unit, 9)[:64]
	body := fmt.Sprintf("%d:%s", seq, payload)
	return fmt.Sprintf("%s:%08x", body, crc32.ChecksumIEEE([]byte(body)))
}

func check(raw string) int {
	cut := strings.LastIndex(raw, ":")
	if cut < 0 {
		return -1
	}
	body := raw[:cut]
	if fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body))) != raw[cut+1:] {
		return -1
	}
	seq, err := strconv.Atoi(body[:strings.Index(body, ":")])
	if err != nil {
		return -1
	}
	return seq
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}

func mechanism(name, user, passwordFile string) sasl.Mechanism {
	if name == "" {
		return nil
	}
	raw, err := os.ReadFile(passwordFile)
	if err != nil {
		fail(2, "-password-file: %v", err)
	}
	password := strings.SplitN(string(raw), "\n", 2)[0]
	switch name {
	case "PLAIN":
		return plain.Auth{User: user, Pass: password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
	}
	fail(2, "-mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", name)
	return nil
}

func main() {
	bootstrap := flag.String("bootstrap", "", "HOST:PORT")
	ca := flag.String("ca", "", "PEM CA bundle the servers are verified against")
	mech := flag.String("mechanism", "", "SASL mechanism (none: TLS only)")
	user := flag.String("user", "", "SASL user")
	passwordFile := flag.String("password-file", "", "file whose first line is the password")
	topic := flag.String("topic", "", "topic")
	group := flag.String("group", "", "consumer group")
	count := flag.Int("count", 50, "records")
	flag.Parse()
	if *bootstrap == "" || *ca == "" || *topic == "" || *group == "" {
		fail(2, "-bootstrap, -ca, -topic and -group are required")
	}
	pem, err := os.ReadFile(*ca)
	if err != nil {
		fail(2, "-ca: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail(2, "-ca: no PEM certificate in %s", *ca)
	}
	// ServerName is left empty: franz-go sets it to the host of each broker it dials.
	opts := []kgo.Opt{
		kgo.SeedBrokers(*bootstrap),
		kgo.DialTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}),
		kgo.ClientID("franz-secured"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}
	if m := mechanism(*mech, *user, *passwordFile); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	producer, err := kgo.NewClient(opts...)
	if err != nil {
		fail(1, "producer: %v", err)
	}
	for i := 0; i < *count; i++ {
		rec := &kgo.Record{Topic: *topic, Key: []byte(fmt.Sprintf("k%d", i%97)), Value: []byte(value(i))}
		if err := producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
			fail(1, "produce %d: %v", i, err)
		}
	}
	producer.Close()

	consumer, err := kgo.NewClient(append(opts,
		kgo.ConsumerGroup(*group), kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())...)
	if err != nil {
		fail(1, "consumer: %v", err)
	}
	seen := map[int]bool{}
	consumed, bad := 0, 0
	for len(seen) < *count && ctx.Err() == nil {
		fetches := consumer.PollFetches(ctx)
		fetches.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "fetch %s/%d: %v\n", t, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			consumed++
			seq := check(string(r.Value))
			if seq < 0 || string(r.Key) != fmt.Sprintf("k%d", seq%97) || seen[seq] {
				bad++
				return
			}
			seen[seq] = true
		})
	}
	commitCtx, commitCancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := consumer.CommitUncommittedOffsets(commitCtx); err != nil {
		fmt.Fprintf(os.Stderr, "commit: %v\n", err)
	}
	commitCancel()
	consumer.Close()
	out, _ := json.Marshal(map[string]int{
		"produced": *count, "consumed": consumed, "verified": len(seen), "bad": bad})
	fmt.Println(string(out))
	if bad != 0 || len(seen) != *count || consumed != *count {
		os.Exit(1)
	}
}
